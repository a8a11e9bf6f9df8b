// The status page: the daemon's health in plain words and results per day (inline SVG chart).
import { api } from './api.js';
import { loadLisStatus } from './lis.js';
import { state } from './state.js';
import { $, bytes, classColour, classLabel, el, pct, svg, toast, when } from './ui.js';

/** The chart's segment for images given no verdict: neither a class colour nor the grey of failures. */
const OUT_OF_DOMAIN = 'out_of_domain';
const OUT_OF_DOMAIN_COLOUR = '#7c3aed';

export async function loadStatus() {
  let data;
  try {
    data = await api('/api/dashboard/status');
  } catch (err) {
    toast(`Could not load status: ${err.message}`, true);
    return;
  }
  const s = data.status;
  const grid = $('status-grid');
  const item = (label, value, tone) =>
    el('div', { class: `stat ${tone || ''}` }, el('dt', { text: label }), el('dd', { text: value }));
  grid.replaceChildren(
    item('Model', s.model ? `${s.model.name} ${s.model.version}` : 'not loaded', s.model ? '' : 'bad'),
    item('Runs on', s.provider || '—'),
    item('Flag threshold', s.threshold === null ? '—' : `P(B-ALL) ≥ ${pct(s.threshold)}`),
    item('Review band', s.uncertainBand ? `${pct(s.uncertainBand[0])} – ${pct(s.uncertainBand[1])}` : '—'),
    item('Waiting in queue', String(s.queueDepth)),
    item('Analysed', `${s.processed} images${s.failed ? `, ${s.failed} unreadable` : ''}`),
    item(
      'Cannot screen',
      s.outOfDomain
        ? `${s.outOfDomain} unlike the training images: ${(s.outOfDomainByReason || []).map((r) => `${r.text} (${r.count})`).join('; ')}`
        : 'none',
      s.outOfDomain ? 'warn' : '',
    ),
    item('Throughput', `${s.throughputPerMin.toFixed(1)} images/min`),
    item(
      'Time per image',
      s.latencyMs.p50 === null
        ? '—'
        : `typical ${Math.round(s.latencyMs.p50)} ms, slow ${Math.round(s.latencyMs.p95)} ms (p95)`,
    ),
    item(
      'MQTT broker',
      !s.broker.enabled ? 'off (not configured)' : s.broker.connected ? 'connected' : 'NOT connected',
      s.broker.enabled && !s.broker.connected ? 'bad' : '',
    ),
    item('Messages not yet delivered', String(s.outboxBacklog), s.outboxBacklog > 0 ? 'warn' : ''),
    item('Free disk', bytes(s.diskFreeBytes)),
    item('Last image', when(s.lastImageAt)),
    item('Suggestion = sign-off', agreementText(await api('/api/specimens/agreement').catch(() => null))),
    ...(s.colourBalance ? [colourItem(s.colourBalance, item)] : []),
    ...(s.magnification ? [magnificationItem(s.magnification, item)] : []),
    ...(s.captureClock ? [clockItem(s.captureClock, item)] : []),
    backupItem(s.backup, s.problems || [], item),
  );
  const problems = $('status-problems');
  problems.replaceChildren(...(s.problems || []).map((p) => el('li', { text: p })));
  problems.hidden = !s.problems || s.problems.length === 0;
  $('daily-chart').replaceChildren(dailyChart(data.daily));
  await loadLisStatus();
}

/**
 * The camera's green against the training camera's, over the latest images screened or refused
 * for their green: a brighter green clips in the background, so most single pictures do not show
 * it (docs/new-microscope.md).
 */
function colourItem(c, item) {
  const label = 'White balance (green)';
  if (c.median === null) return item(label, 'no image measured yet');
  const figures = `median ${c.median.toFixed(3)} over the last ${c.measured} images screened or refused only for their green or a contradicted benign call; training images at most ${c.high.toFixed(3)}`;
  return c.drifting
    ? item(label, `green brighter than the training camera: ${figures}. Check the white balance.`, 'warn')
    : item(label, `like the training camera: ${figures}`);
}

/**
 * The red cells' size over the latest captures measured, against the training images': it
 * measures the magnification, which no single field shows (docs/new-microscope.md).
 */
function magnificationItem(m, item) {
  const label = 'Magnification (red-cell size)';
  if (m.median === null) return item(label, 'no capture measured yet');
  const figures = `median radius ${m.median.toFixed(2)} px over the last ${m.measured} captures measured; training images ${m.low.toFixed(2)}–${m.high.toFixed(2)} px`;
  if (m.called)
    return item(
      label,
      `${m.differs === 'smaller' ? 'lower' : 'higher'} than the training camera's: ${figures}. Check the objective and camera adapter.`,
      'warn',
    );
  if (m.differs)
    return item(
      label,
      `red cells measure ${m.differs} than the training camera's, but its colour or exposure changed too, which moves this figure: fix that first (${figures})`,
      'warn',
    );
  if (m.measured < Math.ceil(m.window / 2))
    return item(label, `${figures}; judged from ${Math.ceil(m.window / 2)} captures on`);
  return item(label, `like the training camera's: ${figures}`);
}

/**
 * Whether the capture files' time stamps agree with this station's clock, which stamps specimen
 * sessions (docs/specimens.md); the problems list says which files.
 */
function clockItem(c, item) {
  const label = 'Capture clock';
  if (c.captures === 0) return item(label, 'no capture yet');
  const parts = [];
  if (c.ahead > 0)
    parts.push(`${c.ahead} stamped up to ${Math.round(c.max_ahead_s)} s ahead of this station`);
  if (c.before_session > 0)
    parts.push(`${c.before_session} left out of the open session (stamped before its start)`);
  // One old picture copied in late is not a clock; health calls it from three on.
  if (c.long_before_session >= 3)
    parts.push(
      `${c.long_before_session} left out of the open session, stamped up to ` +
        `${Math.round(c.max_long_before_s / 60)} min before its start (a clock far behind?)`,
    );
  return parts.length
    ? item(label, `of the last ${c.captures} captures: ${parts.join('; ')}. Check the clocks (NTP).`, 'warn')
    : item(label, `agrees with this station over the last ${c.captures} captures`);
}

/** The latest `blastwatch backup`: when the last good copy was made, or why the latest failed. */
function backupItem(b, problems, item) {
  const label = 'Backup';
  if (!b) return item(label, 'none made yet (blastwatch backup: systemd/README.md, "Backups")');
  if (!b.ok) return item(label, `failed ${when(b.last_attempt_at)}: ${b.error}`, 'bad');
  // Health says when the latest good copy is too old; the line repeats its verdict.
  const stale = problems.some((p) => p.startsWith('no backup for '));
  return item(label, `last copy ${when(b.last_ok_at)}`, stale ? 'warn' : '');
}

/** Stacked bars per day (inline SVG: no chart library, no network). */
function dailyChart(days) {
  const classes = state.meta.classes.map((c) => c.name);
  const width = 640;
  const height = 220;
  const pad = { left: 36, right: 8, top: 10, bottom: 36 };
  const totals = days.map(
    (d) => classes.reduce((s, c) => s + (d.counts[c] || 0), 0) + (d.outOfDomain || 0) + (d.failed || 0),
  );
  const max = Math.max(1, ...totals);
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart-svg' });
  const title = svg('title');
  title.textContent = 'Results per day by class';
  chart.append(title);
  const plotH = height - pad.top - pad.bottom;
  const plotW = width - pad.left - pad.right;
  for (let v = 0; v <= top; v += step) {
    const y = pad.top + plotH - (v / top) * plotH;
    chart.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: 'grid' }));
    const t = svg('text', { x: pad.left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' });
    t.textContent = String(v);
    chart.append(t);
  }
  const slot = plotW / Math.max(1, days.length);
  const barW = Math.max(4, slot * 0.7);
  days.forEach((d, i) => {
    let y = pad.top + plotH;
    const x = pad.left + i * slot + (slot - barW) / 2;
    const segments = [
      ...classes.map((c) => [c, d.counts[c] || 0]),
      [OUT_OF_DOMAIN, d.outOfDomain || 0],
      ['failed', d.failed || 0],
    ];
    for (const [name, n] of segments) {
      if (!n) continue;
      const h = (n / top) * plotH;
      y -= h;
      const { fill, what } = segmentLook(name);
      const rect = svg('rect', { x, y, width: barW, height: h, fill });
      const tip = svg('title');
      tip.textContent = `${d.day}: ${n} ${what}`;
      rect.append(tip);
      chart.append(rect);
    }
    if (days.length <= 16 || i % 2 === 0) {
      const label = svg('text', {
        x: x + barW / 2,
        y: height - pad.bottom + 16,
        'text-anchor': 'middle',
        class: 'axis',
      });
      label.textContent = d.day.slice(5);
      chart.append(label);
    }
  });
  return el('figure', {}, chart, chartLegend(classes));
}

const FAILED_COLOUR = '#9ca3af';

/** A bar segment's colour and the words its tooltip uses. */
function segmentLook(name) {
  if (name === 'failed') return { fill: FAILED_COLOUR, what: 'unreadable' };
  if (name === OUT_OF_DOMAIN) return { fill: OUT_OF_DOMAIN_COLOUR, what: 'could not be screened' };
  return { fill: classColour(name), what: classLabel(name) };
}

function chartLegend(classes) {
  const item = (colour, label) => {
    const swatch = el('span', { class: 'swatch' });
    swatch.style.backgroundColor = colour;
    return el('li', {}, swatch, label);
  };
  return el(
    'ul',
    { class: 'legend' },
    ...classes.map((c) => item(classColour(c), classLabel(c))),
    item(OUT_OF_DOMAIN_COLOUR, 'Cannot screen'),
    item(FAILED_COLOUR, 'Unreadable'),
  );
}

function niceStep(max) {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return Math.max(1, (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag);
}

/** The lab's own agreement between the model's suggestion and the person's latest verdict. */
function agreementText(a) {
  if (!a || !a.signed) return 'no specimen signed yet';
  return `${a.agreed} of ${a.signed} signed specimens (${pct(a.rate)})`;
}
