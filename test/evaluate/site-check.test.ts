import t from 'tap';
import { binomialUpperBound, SITE_TARGETS, siteCheck } from '../../src/evaluate/site-check.js';

t.test('the upper bound is Clopper-Pearson one-sided 95 % (values from scipy beta.ppf)', async (t) => {
  const cases: Array<[number, number, number]> = [
    [0, 100, 0.02951304960703993],
    [1, 20, 0.2161061642068473],
    [10, 351, 0.047846195154108186],
    [0, 299, 0.009969146792899267],
    [0, 298, 0.010002432437677691],
    [3, 1000, 0.007735244718479458],
    [19, 20, 0.9974386212234697],
  ];
  for (const [k, n, expected] of cases)
    t.ok(Math.abs(binomialUpperBound(k, n) - expected) < 1e-9, `${k} of ${n}`);
  t.equal(binomialUpperBound(5, 5), 1);
  t.ok(binomialUpperBound(0, 100000) < 3.1e-5, 'large n does not underflow');
  t.throws(() => binomialUpperBound(3, 2), RangeError);
  t.throws(() => binomialUpperBound(0, 0), RangeError);
});

const figures = { n: 416, n_accepted: 415, accuracy: 0.9855, silent_misses: 0, malignant_images: 351 };

t.test('a set meeting every target with enough malignant images: the model applies', async (t) => {
  const c = siteCheck(figures);
  t.same(c.missed, []);
  t.equal(c.verdict, 'applies');
  t.same(c.targets, SITE_TARGETS);
});

t.test('each target missed on its own makes the verdict "does not apply"', async (t) => {
  t.same(siteCheck({ ...figures, n_accepted: 374 }).missed, ['accepted_share'], '89.9 % accepted');
  t.same(siteCheck({ ...figures, accuracy: 0.9695 }).missed, ['accuracy']);
  const misses = siteCheck({ ...figures, silent_misses: 4 });
  t.same(misses.missed, ['silent_miss_share'], '4 of 351 = 1.14 %');
  t.equal(misses.verdict, 'does_not_apply');
  t.same(siteCheck({ ...figures, silent_misses: 3 }).missed, [], '3 of 351 = 0.85 % is within');
  t.same(siteCheck({ ...figures, n_accepted: 0, accuracy: null }).missed, ['accepted_share', 'accuracy']);
});

t.test('too few malignant images to rule out 1 % silent misses: not enough images', async (t) => {
  const small = siteCheck({ n: 40, n_accepted: 40, accuracy: 1, silent_misses: 0, malignant_images: 30 });
  t.same(small.missed, []);
  t.equal(small.verdict, 'not_enough_images');
  t.ok(Math.abs((small.silent_miss_upper_95 as number) - (1 - 0.05 ** (1 / 30))) < 1e-9, 'the rule of three');
  t.equal(
    siteCheck({ ...figures, malignant_images: 298 }).verdict,
    'not_enough_images',
    '298: bound just over 1 %',
  );
  t.equal(siteCheck({ ...figures, malignant_images: 299 }).verdict, 'applies', '299: bound just under 1 %');
  const benignOnly = siteCheck({
    n: 300,
    n_accepted: 300,
    accuracy: 1,
    silent_misses: 0,
    malignant_images: 0,
  });
  t.equal(benignOnly.silent_miss_upper_95, null);
  t.equal(benignOnly.verdict, 'not_enough_images', 'no malignant image: the silent misses are not measured');
});
