/**
 * The green balance: measured on the unclipped pixels, raised by a camera that records green
 * brighter even where the background clips (a real data-set image and the robustness report's
 * own shift), refused above the training pictures' highest, and judged over many pictures.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import t from 'tap';
import type { DomainCheck, DomainReason } from '../../src/domain/applicability.js';
import {
  colourDrift,
  countsForColourWatch,
  fitColourDrift,
  watchedBalances,
} from '../../src/gate/colour-drift.js';
import { backgroundColour, UNCLIPPED_MAX } from '../../src/gate/image-measures.js';
import { decodeImage } from '../../src/decode/index.js';
import { parseCameraShift } from '../../scripts/camera-shifts.js';
import { repoRoot } from '../helpers/cli.js';

t.test('green balance: green over the mean of red and blue, clipped pixels left out', async (t) => {
  const n = 200;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    // half the pixels a clipped background (green at 255), half cells with R 100, G 90, B 140
    const cell = i % 2 === 0;
    rgb.set(cell ? [100, 90, 140] : [250, 255, 250], i * 3);
  }
  const { greenBalance } = backgroundColour(rgb, n, 128);
  t.equal(greenBalance, 90 / 120, 'the background pixels, one channel above UNCLIPPED_MAX, do not count');
  const allClipped = new Uint8Array(n * 3).fill(UNCLIPPED_MAX + 1);
  t.equal(backgroundColour(allClipped, n, 128).greenBalance, null, 'nothing unclipped: not measurable');
  const black = new Uint8Array(n * 3);
  t.equal(backgroundColour(black, n, 128).greenBalance, null, 'no red or blue to compare with');
});

t.test(
  'a camera recording green 15 % brighter raises the balance, though the background clips',
  async (t) => {
    const path = 'test/fixtures/samples/Pre/WBC-Malignant-Pre-334.jpg';
    const bytes = readFileSync(path);
    const shifted = (await parseCameraShift('gains:1,1.15,1').apply(bytes, path)).bytes;
    const measure = async (b: Buffer) => {
      const d = await decodeImage(b, { size: 224, limitInputPixels: 1e8 });
      const n = d.width * d.height;
      let green = 0;
      for (let o = 1; o < n * 3; o += 3) green = Math.max(green, d.rgb[o]!);
      return { balance: backgroundColour(d.rgb, n, 128).greenBalance!, brightestGreen: green };
    };
    const before = await measure(bytes);
    const after = await measure(shifted);
    t.equal(after.brightestGreen, 255, 'the shifted background clips in green');
    t.ok(
      after.balance > before.balance * 1.08,
      `balance ${before.balance.toFixed(3)} -> ${after.balance.toFixed(3)}: most of the 15 % shows`,
    );
  },
);

t.test('fitting takes the highest measurable balance', async (t) => {
  t.same(fitColourDrift([0.9, null, 1.01234567, 0.95]), {
    figure: 'green_balance',
    high: 1.0123,
    refuse: true,
  });
  t.throws(() => fitColourDrift([null, null]), /no picture with a measurable green balance/);
});

t.test("the watch counts screened pictures and those refused only as this camera's smears", async (t) => {
  t.ok(countsForColourWatch({ in: true, reasons: [] }));
  t.ok(countsForColourWatch({ in: false, reasons: ['green_balance'] }));
  t.ok(countsForColourWatch({ in: false, reasons: ['features_disagree'] }), 'features near a training class');
  t.ok(countsForColourWatch({ in: false, reasons: ['green_balance', 'features_disagree'] }));
  t.notOk(
    countsForColourWatch({ in: false, reasons: ['features_disagree', 'features'] }),
    'features unlike any training image',
  );
  t.notOk(
    countsForColourWatch({ in: false, reasons: ['green_balance', 'appearance'] }),
    'not a smear, maybe',
  );
  t.notOk(countsForColourWatch({ in: false, reasons: ['focus'] }));
});

t.test(
  'the watched balances: one per counted picture, unjudged and otherwise-refused left out',
  async (t) => {
    const judged = (inDomain: boolean, reasons: DomainReason[], greenBalance?: number): DomainCheck => {
      const scores: Record<string, number> = {};
      if (greenBalance !== undefined) scores.greenBalance = greenBalance;
      return { in: inDomain, reasons, scores };
    };
    t.same(
      watchedBalances([
        judged(true, [], 0.95),
        null,
        judged(false, ['green_balance'], 1.1),
        judged(false, ['focus'], 0.9),
        judged(true, []),
      ]),
      [0.95, 1.1, undefined],
    );
  },
);

t.test('judged on the median of at least half a window', async (t) => {
  const reference = { figure: 'green_balance' as const, high: 1.04 };
  const high = Array.from({ length: 10 }, () => 1.08);
  t.same(colourDrift(high, 20, reference), {
    window: 20,
    measured: 10,
    median: 1.08,
    high: 1.04,
    drifting: true,
  });
  t.equal(colourDrift(high.slice(1), 20, reference).drifting, false, 'nine of 20: not judged yet');
  t.equal(
    colourDrift([...high, null, undefined, Number.NaN], 26, reference).measured,
    10,
    'unmeasured pictures do not count',
  );
  const mixed = [0.9, 0.95, 1.2, 1.3, 0.97, 1.5];
  t.equal(
    colourDrift(mixed, 6, reference).median,
    (0.97 + 1.2) / 2,
    'an even count: the mean of the middle two',
  );
  t.equal(colourDrift(mixed, 6, reference).drifting, true, 'three fields far off tip the median');
  t.equal(colourDrift([0.9, 0.95, 1.2, 1.3, 0.97, 0.99], 6, reference).drifting, false, 'two do not');
  t.same(colourDrift([], 6, reference), {
    window: 6,
    measured: 0,
    median: null,
    high: 1.04,
    drifting: false,
  });
});

t.test(
  'colour-drift-report: the bundled reference against the samples as recorded and with green brighter',
  async (t) => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'scripts/colour-drift-report.ts',
        '--data',
        'test/fixtures/samples',
        '--window',
        '3',
        '--shifts',
        'none gains:1,1.15,1',
      ],
      { cwd: repoRoot, maxBuffer: 1 << 22 },
    );
    const report = JSON.parse(stdout) as {
      high: number;
      window: number;
      rows: {
        shift: string;
        pictures: number;
        measured: number;
        above: number;
        median: number;
        windows: number;
        windowsAbove: number;
      }[];
    };
    const [asRecorded, green] = report.rows;
    t.equal(report.window, 3);
    t.match(asRecorded, { shift: 'none', pictures: 12, measured: 12, above: 0, windows: 4, windowsAbove: 0 });
    t.equal(green?.shift, 'gains:1,1.15,1');
    t.ok(
      green!.median > report.high && asRecorded!.median < report.high,
      `medians ${asRecorded?.median} -> ${green?.median}, reference ${report.high}`,
    );
    t.ok(green!.windowsAbove >= 1, 'a window of green-shifted pictures is called');
  },
);
