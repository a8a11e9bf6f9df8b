import t from 'tap';
import {
  addCounts,
  screenSpecimens,
  seededRandom,
  simulateFlaggedCounts,
  simulateMixedFlaggedCounts,
  tallyVerdicts,
} from '../../src/evaluate/specimen-simulation.js';
import {
  chooseRule,
  ruleGrid,
  scoreRule,
  type ConditionSimulation,
  type RuleCriterion,
} from '../../src/evaluate/specimen-rule-choice.js';

t.test('seededRandom is reproducible and uniform in [0, 1)', async (t) => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  const first = Array.from({ length: 1000 }, () => a());
  t.same(
    first,
    Array.from({ length: 1000 }, () => b()),
    'same seed, same sequence',
  );
  t.not(seededRandom(8)(), first[0], 'another seed, another sequence');
  t.ok(
    first.every((v) => v >= 0 && v < 1),
    'inside [0, 1)',
  );
  const mean = first.reduce((s, v) => s + v, 0) / first.length;
  t.ok(Math.abs(mean - 0.5) < 0.04, `mean ${mean}`);
});

t.test('drawing a whole pool without replacement gives its exact flagged count', async (t) => {
  // 3 images, 1 flagged: every specimen of all 3 holds exactly that one flagged image
  t.same(simulateFlaggedCounts([true, false, false], 3, 500, seededRandom(1)), [0, 500, 0, 0]);
  t.same(simulateFlaggedCounts([true, true, true, true], 2, 100, seededRandom(1)), [0, 0, 100]);
  t.throws(() => simulateFlaggedCounts([true, false], 3, 1, seededRandom(1)), RangeError, 'm above the pool');
  t.throws(() => simulateFlaggedCounts([true, false], 0, 1, seededRandom(1)), RangeError, 'm = 0');
});

t.test('flagged counts follow the hypergeometric distribution', async (t) => {
  // pool of 10 images, 2 flagged, specimens of 2: P(0) = C(8,2)/C(10,2) = 28/45,
  // P(1) = 2·8/45 = 16/45, P(2) = 1/45
  const draws = 45_000;
  const counts = simulateFlaggedCounts(
    [true, true, ...Array<boolean>(8).fill(false)],
    2,
    draws,
    seededRandom(3),
  );
  [28, 16, 1].forEach((expected45, f) => {
    const p = expected45 / 45;
    const se = Math.sqrt((p * (1 - p)) / draws);
    t.ok(
      Math.abs((counts[f] as number) / draws - p) < 4 * se,
      `P(f=${f}) ${(counts[f] as number) / draws} ≈ ${p}`,
    );
  });
});

t.test('mixed specimens: the blast share decides which pool each image comes from', async (t) => {
  const blasts = Array<boolean>(10).fill(true);
  const normals = Array<boolean>(10).fill(false);
  t.same(
    simulateMixedFlaggedCounts(blasts, normals, 1, 4, 100, seededRandom(1)),
    [0, 0, 0, 0, 100],
    'all blasts',
  );
  t.same(
    simulateMixedFlaggedCounts(blasts, normals, 0, 4, 100, seededRandom(1)),
    [100, 0, 0, 0, 0],
    'no blasts',
  );
  // share 0.5, every blast flagged and no normal cell: flagged ~ Binomial(4, 0.5) = 1,4,6,4,1 / 16
  const draws = 32_000;
  const counts = simulateMixedFlaggedCounts(blasts, normals, 0.5, 4, draws, seededRandom(2));
  [1, 4, 6, 4, 1].forEach((sixteenths, f) => {
    const p = sixteenths / 16;
    const se = Math.sqrt((p * (1 - p)) / draws);
    t.ok(
      Math.abs((counts[f] as number) / draws - p) < 4 * se,
      `P(f=${f}) ${(counts[f] as number) / draws} ≈ ${p}`,
    );
  });
});

t.test('verdicts of a hand-made histogram go through suggestVerdict', async (t) => {
  // specimens of 4 images: 10 with none flagged, 5 with one, 3 with two, 2 with four
  const histogram = [10, 5, 3, 0, 2];
  // k = 2 or share >= 0.75 (3 of 4): suspicious with 2+ flagged
  t.same(tallyVerdicts(histogram, 4, { minFlagged: 2, minFlaggedShare: 0.75, minScreened: 4 }), {
    suspicious: 5,
    insufficient: 0,
    no_suspicious_cells: 15,
  });
  // n = 5 above m = 4: what is not suspicious is insufficient; share 0.25 makes 1 flagged enough
  t.same(tallyVerdicts(histogram, 4, { minFlagged: 9, minFlaggedShare: 0.25, minScreened: 5 }), {
    suspicious: 10,
    insufficient: 10,
    no_suspicious_cells: 0,
  });
  t.same(
    addCounts([
      [1, 2, 3],
      [10, 20, 30],
    ]),
    [11, 22, 33],
  );
});

t.test(
  'specimen sensitivity, specificity and insufficient shares on a tiny pool known by hand',
  async (t) => {
    const random = seededRandom(5);
    // B-ALL pool: 2 of 3 images flagged; benign pool: 1 of 3 flagged; specimens of all 3 images,
    // so every B-ALL specimen has exactly 2 flagged and every benign one exactly 1.
    const ball = simulateFlaggedCounts([true, true, false], 3, 1000, random);
    const benign = simulateFlaggedCounts([true, false, false], 3, 1000, random);
    const strict = screenSpecimens(ball, benign, 3, { minFlagged: 3, minFlaggedShare: 0.7, minScreened: 5 });
    t.equal(strict.sensitivity.value, 0, '2/3 = 67 % < 70 % and 2 < 3: no B-ALL specimen is suspicious');
    t.equal(strict.specificity.value, 1);
    t.equal(strict.insufficientBall.value, 1, 'fewer than 5 screened and not suspicious');
    t.equal(strict.insufficientBenign.value, 1);
    const share = screenSpecimens(ball, benign, 3, { minFlagged: 3, minFlaggedShare: 0.6, minScreened: 3 });
    t.equal(share.sensitivity.value, 1, '67 % >= 60 %');
    t.equal(share.specificity.value, 1, '33 % < 60 %');
    t.equal(share.insufficientBenign.value, 0, '3 screened reaches n = 3');
    const any = screenSpecimens(ball, benign, 3, { minFlagged: 1, minFlaggedShare: 1, minScreened: 3 });
    t.equal(any.specificity.value, 0, 'one flagged benign image is enough at k = 1');
    t.equal(any.specificity.count, 0);
    t.equal(any.specificity.draws, 1000);
    t.ok(any.specificity.high > 0 && any.specificity.high < 0.004, 'Wilson upper bound of 0/1000');
  },
);

// A hand-made condition: histograms of 100 specimens per size m (index = m, then flagged count).
const criterion: RuleCriterion = {
  sensitivityTarget: 0.9,
  specificityFloor: 0.92,
  fromSize: 2,
  toSize: 3,
  tieTolerance: 0,
};
const sim: ConditionSimulation = {
  // m = 1 misses 20 % (below the target, but m = 1 is under fromSize); m = 2, 3: every image flagged
  ball: [[], [20, 80], [0, 0, 100], [0, 0, 0, 100]],
  // at most one flagged image per benign specimen
  benign: [[], [100, 0], [95, 5, 0], [90, 10, 0, 0]],
  mixed: [[], [50, 50], [50, 50, 0], [40, 40, 20, 0]],
};

t.test('rule choice: the grid', async (t) => {
  const grid = ruleGrid(2, 4, 5);
  t.equal(grid.length, 8);
  t.same(
    grid.map((r) => r.minFlaggedShare),
    [0.25, 0.5, 0.75, 1, 0.25, 0.5, 0.75, 1],
  );
  t.ok(grid.every((r) => r.minScreened === 5));
  t.equal(ruleGrid(1, 20, 5)[5]?.minFlaggedShare, 0.3, '6/20 is the double 0.3');
});

t.test('rule choice: floor, then mixed-specimen sensitivity, then specificity, then smaller k', async (t) => {
  const scores = ruleGrid(3, 2, 2).map((rule) => scoreRule(rule, new Map([['clean', sim]]), criterion));
  const k1 = scores.find((s) => s.rule.minFlagged === 1 && s.rule.minFlaggedShare === 0.5);
  // k = 1: benign m = 3 with one flagged image is suspicious, specificity 0.90 under the floor
  t.equal(k1?.worstSpecificity, 0.9);
  t.equal(k1?.sensitiveFrom, 2, 'the m = 1 miss moves sensitiveFrom past 1');
  // k = 2, x = 0.5: m = 2 needs 1 flagged (share 50 %) → mixed 0.5, benign 0.95; m = 3 needs 2 → mixed 0.2
  const k2 = scores.find((s) => s.rule.minFlagged === 2 && s.rule.minFlaggedShare === 0.5);
  t.equal(k2?.worstSpecificity, 0.95);
  t.ok(Math.abs((k2?.worstMixedSensitivity ?? 0) - 0.35) < 1e-12, 'mean of 0.5 and 0.2');
  // k = 3, x = 0.5 scores the same as k = 2, x = 0.5 on these sizes: the smaller k wins the tie
  const choice = chooseRule(scores, criterion);
  t.same(choice.chosen.rule, { minFlagged: 2, minFlaggedShare: 0.5, minScreened: 2 });
  t.equal(choice.eligible, 4, 'k = 2, 3 with x = 0.5, 1 pass the floor');
  t.equal(choice.tied, 2);
  // a floor above 0.95 leaves only rules that need every image flagged at m = 2
  const stricter = chooseRule(scores, { ...criterion, specificityFloor: 0.96 });
  t.same(stricter.chosen.rule, { minFlagged: 2, minFlaggedShare: 1, minScreened: 2 });
  t.throws(() => chooseRule(scores, { ...criterion, specificityFloor: 1.01 }), /no rule/);
});
