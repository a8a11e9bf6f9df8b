/**
 * How the daemon's magnification watch (src/gate/magnification-watch.ts) sees the validation and
 * test splits as recorded and under camera shifts: per window of consecutive fields, the median
 * red-cell radius health would judge, and how many windows it would call a changed
 * magnification, against all classes' training range (what the daemon judges: it has no labels)
 * and against each true class's own range (what a labelled check set adds).
 *
 *   nice -n 10 node --import tsx scripts/magnification-watch-report.ts [--data ../shared/data/all-smears]
 *     [--split training/split.json] [--subset val|test|val,test] [--model models]
 *     [--shifts "KIND:P KIND:P"] [--markdown]
 *
 * The data set has no slide identifiers; consecutive file numbers of one class are the nearest it
 * has to one slide's fields, which is what a window of captures is at a microscope. The window is
 * the reference's own (model.json `acquisition.red_cell_radius.window`). The training split is
 * left out: its windows are what the range was fitted on. Every picture counts, since the gate
 * that leaves some out in the daemon is not run here.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { magnificationFigures } from '../src/gate/red-cell-size.js';
import { fieldRedCellRadius } from '../src/gate/sensor-noise.js';
import { parseCameraShift, RANGE_SHIFTS } from './camera-shifts.js';
import { openModelQuietly } from './gate/measure.js';
import { SPLIT_OPTIONS } from './gate/sets.js';

const AS_RECORDED = 'none';
const DEFAULT_SHIFTS = [
  AS_RECORDED,
  'magnification:0.75',
  'magnification:0.85',
  'magnification:1.15',
  'magnification:1.25',
  ...RANGE_SHIFTS.filter((s) => !s.startsWith('magnification:')),
];

interface Row {
  shift: string;
  windows: number;
  smaller: number;
  larger: number;
  ownClassSmaller: number;
  ownClassLarger: number;
  windowMedianLow: number | null;
  windowMedianHigh: number | null;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...SPLIT_OPTIONS,
      subset: { type: 'string', default: 'val,test' },
      shifts: { type: 'string' },
      markdown: { type: 'boolean', default: false },
    },
  });
  const opened = await openModelQuietly(resolve(values.model));
  const reference = opened.classifier.info.redCellSize;
  if (!reference) throw new Error(`${values.model}/model.json has no acquisition.red_cell_radius`);
  const classes = opened.classifier.info.classes;
  const split = JSON.parse(await readFile(values.split, 'utf8')) as {
    splits: Record<string, { path: string; label: number }[]>;
  };
  // Each subset's classes apart, each in file-name order: a window never spans two classes or subsets.
  const groups: { className: string; paths: string[] }[] = [];
  for (const subset of values.subset.split(',')) {
    const entries = split.splits[subset];
    if (!entries?.length) throw new Error(`${values.split}: no '${subset}' split`);
    classes.forEach((className, label) => {
      const paths = entries
        .filter((e) => e.label === label)
        .map((e) => e.path)
        .sort();
      if (paths.length > 0) groups.push({ className, paths });
    });
  }
  const shifts = values.shifts ? values.shifts.split(/\s+/).filter(Boolean) : DEFAULT_SHIFTS;
  const rows: Row[] = [];
  try {
    for (const name of shifts) {
      const shift = name === AS_RECORDED ? null : parseCameraShift(name);
      const row: Row = {
        shift: name,
        windows: 0,
        smaller: 0,
        larger: 0,
        ownClassSmaller: 0,
        ownClassLarger: 0,
        windowMedianLow: null,
        windowMedianHigh: null,
      };
      for (const { className, paths } of groups) {
        const radii: (number | null)[] = [];
        for (const path of paths) {
          const file = join(values.data, path);
          let bytes: Buffer = await readFile(file);
          if (shift) bytes = (await shift.apply(bytes, file)).bytes;
          const prepared = await opened.prepareImage(bytes, opened.prepareOptions);
          const { width, height } = prepared.decoded;
          const rgb = prepared.modelRgb ?? prepared.decoded.rgb;
          radii.push(fieldRedCellRadius(rgb, width, height, reference.noise_high));
        }
        const own = reference.by_class?.[className];
        for (let i = 0; i + reference.window <= radii.length; i++) {
          const windowRadii = radii.slice(i, i + reference.window);
          const all = magnificationFigures(windowRadii, reference);
          if (all.median === null || all.measured < all.needed) continue;
          row.windows++;
          if (all.differs === 'smaller') row.smaller++;
          if (all.differs === 'larger') row.larger++;
          row.windowMedianLow = Math.min(row.windowMedianLow ?? Infinity, all.median);
          row.windowMedianHigh = Math.max(row.windowMedianHigh ?? -Infinity, all.median);
          if (!own) continue;
          const mine = magnificationFigures(windowRadii, { window: reference.window, ...own });
          if (mine.differs === 'smaller') row.ownClassSmaller++;
          if (mine.differs === 'larger') row.ownClassLarger++;
        }
      }
      rows.push(row);
      process.stderr.write(`magnification-watch-report: ${name} done\n`);
    }
  } finally {
    await opened.classifier.close();
  }
  const out = {
    model: opened.classifier.info.version,
    subset: values.subset,
    window: reference.window,
    low: reference.low,
    high: reference.high,
    rows,
  };
  if (!values.markdown) {
    process.stdout.write(`${JSON.stringify(out, null, 1)}\n`);
    return;
  }
  const f = (v: number | null): string => (v === null ? '–' : v.toFixed(2));
  const pct = (n: number, of: number): string => (of === 0 ? '–' : `${((100 * n) / of).toFixed(1)} %`);
  const lines = [
    `| shift | windows of ${reference.window} | lowest and highest median (px) | called smaller / larger (all classes' range, ${reference.low}–${reference.high} px) | called against the true class's range: smaller / larger |`,
    '|---|--:|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.shift === AS_RECORDED ? 'as recorded' : `\`${r.shift}\``} | ${r.windows} | ` +
        `${f(r.windowMedianLow)}–${f(r.windowMedianHigh)} | ${pct(r.smaller, r.windows)} / ${pct(r.larger, r.windows)} | ` +
        `${pct(r.ownClassSmaller, r.windows)} / ${pct(r.ownClassLarger, r.windows)} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`magnification-watch-report: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
