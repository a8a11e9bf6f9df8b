/** The benchmark's human outputs: a fixed-width table for the terminal and a small SVG chart. */
import type { LatencySummary } from './stats.js';

export interface Row {
  label: string;
  s: LatencySummary | null;
  /** CPU ms per image (all threads of the process doing the work). */
  cpu?: number | null;
  note?: string;
}

const fmt = (v: number | undefined | null, digits = 2): string =>
  v === undefined || v === null || Number.isNaN(v) ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(digits);

export function table(title: string, rows: Row[]): string {
  const head = ['', 'n', 'median ms', 'p95 ms', 'p99 ms', 'img/s', 'cpu ms/img', ''];
  const body = rows.map((r) => [
    r.label,
    r.s ? String(r.s.n) : '-',
    fmt(r.s?.median_ms, 3),
    fmt(r.s?.p95_ms, 3),
    fmt(r.s?.p99_ms, 3),
    fmt(r.s?.throughput_per_s, 1),
    fmt(r.cpu, 2),
    r.note ?? '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [`== ${title}`, line(head), ...body.map(line)].join('\n');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Horizontal bars of median (solid) and p95 (outline) per row, on a log scale so that a 0.05 ms
 * stage and a 500 ms reference segmentation fit on one chart.
 */
export function svgChart(title: string, subtitle: string, rows: Row[]): string {
  const data = rows.filter((r) => r.s && r.s.median_ms > 0);
  const labelW = 270;
  const plotW = 520;
  const rowH = 22;
  const top = 54;
  const width = labelW + plotW + 110;
  const height = top + data.length * rowH + 40;
  const values = data.flatMap((r) => [r.s!.median_ms, r.s!.p95_ms]);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(1e-3, Math.min(...values)))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...values))));
  const x = (v: number): number => labelW + (Math.log10(Math.max(v, lo) / lo) / Math.log10(hi / lo)) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="10" y="38" fill="#555">${esc(subtitle)}</text>`,
  ];
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    const gx = x(d).toFixed(1);
    out.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${top + data.length * rowH}" stroke="#ddd"/>`);
    out.push(
      `<text x="${gx}" y="${top + data.length * rowH + 16}" text-anchor="middle" fill="#555">${d >= 1 ? d : d.toPrecision(1)} ms</text>`,
    );
  }
  data.forEach((r, i) => {
    const y = top + i * rowH;
    const colour = r.label.startsWith('reference')
      ? '#d9822b'
      : r.label.startsWith('e2e')
        ? '#2b7bd9'
        : '#3a9d5d';
    out.push(`<text x="${labelW - 8}" y="${y + 14}" text-anchor="end">${esc(r.label)}</text>`);
    out.push(
      `<rect x="${labelW}" y="${y + 3}" width="${(x(r.s!.p95_ms) - labelW).toFixed(1)}" height="14" fill="none" stroke="${colour}"/>`,
    );
    out.push(
      `<rect x="${labelW}" y="${y + 3}" width="${(x(r.s!.median_ms) - labelW).toFixed(1)}" height="14" fill="${colour}"/>`,
    );
    out.push(
      `<text x="${(x(r.s!.p95_ms) + 4).toFixed(1)}" y="${y + 14}" fill="#333">${fmt(r.s!.median_ms, 3)}</text>`,
    );
  });
  out.push(
    `<text x="10" y="${height - 6}" fill="#555">bar: median, outline: p95 (log scale). green: stages alone, blue: through the daemon, orange: Python reference</text>`,
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** The same rows as a Markdown table (for docs and issue comments). */
export function markdownTable(rows: Row[]): string {
  const lines = [
    '| | n | median ms | p95 ms | p99 ms | img/s | CPU ms/img | |',
    '|---|--:|--:|--:|--:|--:|--:|---|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.s ? r.s.n : '-'} | ${fmt(r.s?.median_ms, 3)} | ${fmt(r.s?.p95_ms, 3)} | ${fmt(r.s?.p99_ms, 3)} | ${fmt(r.s?.throughput_per_s, 1)} | ${fmt(r.cpu, 2)} | ${r.note ?? ''} |`,
    ),
  ];
  return lines.join('\n') + '\n';
}
