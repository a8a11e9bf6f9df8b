import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import {
  acceptedAt,
  chooseThreshold,
  outcomesAt,
  uncertainBand,
  type ThresholdRecord,
} from '../../src/gate/fit-threshold.js';
import { repoRoot } from '../helpers/cli.js';

const run = promisify(execFile);

/** `n` malignant images of one set with P(B-ALL) from `scores` (cycled), all accepted unless told. */
function set(name: string, scores: readonly number[], n = scores.length, rejected = 0): ThresholdRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    set: name,
    name: `${name}/${i}`,
    malignant: true,
    accepted: i >= rejected,
    pBall: scores[i % scores.length] as number,
  }));
}

t.test('the threshold is lowered to the set that would miss too many, and never raised', async (t) => {
  const benign: ThresholdRecord = {
    set: 'validation',
    name: 'b',
    malignant: false,
    accepted: true,
    pBall: 0.99,
  };
  const clean = set('validation', [0.9], 200);
  // 200 malignant images: 1 % allows 2 misses, so the boundary is the third-lowest score.
  const shifted = [...set('warm', [0.05, 0.06, 0.12]), ...set('warm', [0.8], 197)];
  const choice = chooseThreshold([benign, ...clean, ...shifted], 0.2, 0.01);
  t.equal(choice.threshold, 0.12);
  t.equal(choice.binding, 'warm');
  t.same(choice.bySet.warm, { malignant: 200, allowed: 2, boundary: 0.12 });
  const silent = shifted.filter((r) => r.pBall < choice.threshold).length;
  t.equal(silent, 2, 'exactly the allowed misses at the chosen threshold');

  const easy = chooseThreshold([...clean, ...set('cool', [0.7], 200)], 0.2, 0.01);
  t.equal(easy.threshold, 0.2, 'no set needs more: the clean rule stands');
  t.equal(easy.binding, null);
});

t.test('images the gate refuses are not silent misses, but count among the malignant', async (t) => {
  // 100 malignant: 1 allowed. The two lowest are refused, so the boundary is the second accepted.
  const records = [...set('dim', [0.01, 0.02, 0.3, 0.4]), ...set('dim', [0.9], 96)].map((r, i) => ({
    ...r,
    accepted: i >= 2,
  }));
  const choice = chooseThreshold(records, 0.5, 0.01);
  t.equal(choice.bySet.dim?.allowed, 1);
  t.equal(choice.threshold, 0.4);
  const refusedAll = chooseThreshold(set('blank', [0.01], 10, 10), 0.5, 0.01);
  t.equal(refusedAll.bySet.blank?.boundary, null, 'a set the gate refuses whole sets no bound');
  t.equal(refusedAll.threshold, 0.5);
});

t.test(
  'outcomes: silent misses among malignant images, false alarms among accepted benign ones',
  async (t) => {
    const records: ThresholdRecord[] = [
      { set: 'warm', name: 'a', malignant: true, accepted: true, pBall: 0.1 },
      { set: 'warm', name: 'b', malignant: true, accepted: false, pBall: 0.05 },
      { set: 'warm', name: 'c', malignant: true, accepted: true, pBall: 0.9 },
      { set: 'warm', name: 'd', malignant: false, accepted: true, pBall: 0.15 },
      { set: 'warm', name: 'e', malignant: false, accepted: false, pBall: 0.99 },
      { set: 'warm', name: 'f', malignant: false, accepted: true, pBall: 0.01 },
    ];
    t.same(outcomesAt(records, 0.2).warm, {
      malignant: 3,
      silentMisses: 1,
      benignAccepted: 2,
      falseAlarms: 0,
    });
    t.same(outcomesAt(records, 0.1).warm, {
      malignant: 3,
      silentMisses: 0,
      benignAccepted: 2,
      falseAlarms: 1,
    });
  },
);

t.test('a disagreeing image is withheld when called benign: never a silent miss', async (t) => {
  // 100 malignant: 1 allowed. The two lowest disagree (features nearer a B-ALL class), so the
  // gate withholds them at any threshold above their P(B-ALL): the boundary is the second other.
  const records = [...set('small', [0.01, 0.02, 0.3, 0.4]), ...set('small', [0.9], 96)].map((r, i) => ({
    ...r,
    disagrees: i < 2,
  }));
  const choice = chooseThreshold(records, 0.5, 0.01);
  t.equal(choice.threshold, 0.4);
  t.same(outcomesAt(records, 0.35).small, {
    malignant: 100,
    silentMisses: 1,
    benignAccepted: 0,
    falseAlarms: 0,
  });
  const benign: ThresholdRecord[] = [
    { set: 'b', name: 'called benign', malignant: false, accepted: true, disagrees: true, pBall: 0.1 },
    { set: 'b', name: 'flagged', malignant: false, accepted: true, disagrees: true, pBall: 0.6 },
  ];
  t.same(
    outcomesAt(benign, 0.2).b,
    { malignant: 0, silentMisses: 0, benignAccepted: 1, falseAlarms: 1 },
    'withheld below the threshold, accepted (and flagged) above it',
  );
  t.ok(acceptedAt(benign[0]!, 0.05), 'at a threshold below its P(B-ALL) it is flagged, so accepted');
  t.notOk(acceptedAt(benign[0]!, 0.2));
});

t.test('the band follows the threshold as the training report draws it', async (t) => {
  t.same(uncertainBand(0.2), [0.1, 0.6]);
  t.same(uncertainBand(0.02), [0.01, 0.51]);
});

t.test(
  'fit-threshold records what the shifts need, lowers the threshold only when told, and a rerun changes nothing',
  async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'fit-threshold-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    await cp(join(repoRoot, 'models'), dir, { recursive: true });
    // A clean rule far too high for any shift.
    const manifestPath = join(dir, 'model.json');
    const shipped = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
    delete shipped.threshold_fit;
    // At 0.99 the disagreement check would withhold nearly every blast (their features lie nearer
    // a B-ALL class): off here, so that a shift binds in a 16-image sample.
    const gate = shipped.gate as { features: { refuse_disagreement?: boolean } };
    delete gate.features.refuse_disagreement;
    await writeFile(manifestPath, JSON.stringify({ ...shipped, threshold: 0.99 }));
    const fit = (...extra: string[]): Promise<{ stdout: string; stderr: string }> =>
      run(
        process.execPath,
        [
          '--import',
          'tsx',
          'scripts/fit-threshold.ts',
          '--model',
          dir,
          '--every',
          '26',
          '--shifts',
          'magnification:0.75',
          ...extra,
        ],
        { cwd: repoRoot, maxBuffer: 1 << 22 },
      );
    type Fitted = {
      threshold: number;
      uncertain_band: [number, number];
      version: string;
      threshold_rule: string;
      threshold_fit: {
        clean: number;
        needed: number;
        applied: boolean;
        binding: string | null;
        boundaries: Record<string, number | null>;
        data: string;
      };
    };
    const read = async (): Promise<Fitted> => JSON.parse(await readFile(manifestPath, 'utf8')) as Fitted;

    const { stderr } = await fit();
    t.match(
      stderr,
      /\| validation \| \d+\/\d+ \| \d+\/\d+ \| \d+\/\d+ \| \d+\/\d+ \|/,
      'the comparison table',
    );
    t.match(stderr, /\| all shifts \|/);
    const recorded = await read();
    t.equal(recorded.threshold, 0.99, 'without --lower the threshold stays');
    t.equal(recorded.version, shipped.version, 'and so does the version');
    t.equal(recorded.threshold_fit.applied, false);
    t.equal(recorded.threshold_fit.clean, 0.99);
    t.same(Object.keys(recorded.threshold_fit.boundaries), ['validation', 'magnification:0.75']);
    t.match(recorded.threshold_fit.data, /16 images, clean and under 1 camera shifts/);
    const bounds = Object.values(recorded.threshold_fit.boundaries).filter((b): b is number => b !== null);
    t.ok(recorded.threshold_fit.needed < 0.99, `the shifts need ${recorded.threshold_fit.needed}`);
    t.ok(Math.abs(recorded.threshold_fit.needed - Math.min(...bounds)) < 1e-5, 'the lowest set bound');
    t.not(recorded.threshold_fit.binding, null);

    await fit('--lower');
    const lowered = await read();
    t.equal(lowered.threshold, recorded.threshold_fit.needed, '--lower applies it');
    t.equal(lowered.threshold_fit.clean, 0.99, 'the clean rule is kept as the upper bound');
    t.equal(lowered.threshold_fit.applied, true);
    t.same(lowered.uncertain_band, uncertainBand(lowered.threshold));
    t.not(lowered.version, shipped.version, 'a new threshold, a new version');
    t.equal(lowered.version.split('+')[1], String(shipped.version).split('+')[1], "the same weights' hash");

    await fit('--lower');
    const again = await read();
    t.equal(again.threshold, lowered.threshold, 'the same images give the same threshold');
    t.equal(again.version, lowered.version, 'an unchanged threshold keeps the version');

    await fit();
    const restored = await read();
    t.equal(restored.threshold, 0.99, 'without --lower a lowered threshold goes back to the clean rule');
    t.same(restored.uncertain_band, uncertainBand(0.99));
    t.match(restored.threshold_rule, /^P\(B-ALL\) = 1 - P\(Benign\) after temperature; chosen on val/);
    t.notMatch(restored.threshold_rule, /lowered/);
    t.not(restored.version, lowered.version, 'and that is another model again');
  },
);
