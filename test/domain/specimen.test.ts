import t from 'tap';
import { describeRule, suggestVerdict, wilsonInterval, type VerdictRule } from '../../src/domain/specimen.js';

t.test('wilsonInterval matches the published score intervals', async (t) => {
  // Newcombe RG, "Two-sided confidence intervals for the single proportion: comparison of seven
  // methods", Stat Med 1998;17:857-872: its four worked examples under method 3 (the Wilson
  // score interval without continuity correction, 95 %), published to four decimals.
  const published: Array<[number, number, number, number]> = [
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ];
  for (const [k, n, low, high] of published) {
    const ci = wilsonInterval(k, n);
    t.ok(Math.abs(ci.low - low) <= 5e-5, `${k}/${n} low ${ci.low} ≈ ${low}`);
    t.ok(Math.abs(ci.high - high) <= 5e-5, `${k}/${n} high ${ci.high} ≈ ${high}`);
  }
});

t.test('wilsonInterval at the edges: 0/n, n/n, n = 0', async (t) => {
  const z2 = 1.959963984540054 ** 2;
  // 0/n: the lower limit is exactly 0 and the upper z²/(n + z²) (Wilson 1927), never the
  // zero-width interval the normal approximation gives.
  const none = wilsonInterval(0, 20);
  t.equal(none.low, 0);
  t.ok(Math.abs(none.high - z2 / (20 + z2)) < 1e-12, `upper ${none.high}`);
  // n/n mirrors 0/n
  const all = wilsonInterval(20, 20);
  t.equal(all.high, 1);
  t.ok(Math.abs(all.low - 20 / (20 + z2)) < 1e-12, `lower ${all.low}`);
  t.ok(Math.abs(all.low - (1 - none.high)) < 1e-12, 'symmetric to 0/n');
  // nothing observed: nothing is known
  t.same(wilsonInterval(0, 0), { low: 0, high: 1 });
  // a single image: wide, inside [0, 1]
  const one = wilsonInterval(1, 1);
  t.ok(one.low > 0.2 && one.low < 0.21 && one.high === 1, `1/1: ${one.low}..${one.high}`);
});

t.test('wilsonInterval honours z', async (t) => {
  // z = 1: half-width sqrt(p(1-p)/n + 1/(4n²)) / (1 + 1/n) around (p + 1/(2n)) / (1 + 1/n); 5/10 → 0.5 ± 0.1508
  const ci = wilsonInterval(5, 10, 1);
  t.ok(Math.abs(ci.low - (0.5 - Math.sqrt(0.025 + 0.0025) / 1.1)) < 1e-12, `low ${ci.low}`);
  t.ok(Math.abs(ci.high - (0.5 + Math.sqrt(0.025 + 0.0025) / 1.1)) < 1e-12, `high ${ci.high}`);
});

const rule: VerdictRule = { minScreened: 5, minFlagged: 5, minFlaggedShare: 0.45 };

t.test('suggestVerdict: a flagged image is never hidden by a small count', async (t) => {
  t.equal(
    suggestVerdict({ screened: 1, flagged: 1 }, rule),
    'suspicious',
    '1 of 1: share 100 % wins over insufficient',
  );
  t.equal(suggestVerdict({ screened: 3, flagged: 2 }, rule), 'suspicious', '2 of 3 (67 %)');
  t.equal(
    suggestVerdict({ screened: 3, flagged: 1 }, rule),
    'insufficient',
    '1 of 3 (33 %) below the share, too few',
  );
  t.equal(suggestVerdict({ screened: 0, flagged: 0 }, rule), 'insufficient', 'nothing screened');
});

t.test('suggestVerdict: the count and the share each suffice', async (t) => {
  t.equal(suggestVerdict({ screened: 100, flagged: 5 }, rule), 'suspicious', '5 flagged (5 %): the count');
  t.equal(
    suggestVerdict({ screened: 100, flagged: 4 }, rule),
    'no_suspicious_cells',
    '4 flagged (4 %): neither',
  );
  const shareOnly: VerdictRule = { minScreened: 5, minFlagged: 50, minFlaggedShare: 0.45 };
  t.equal(suggestVerdict({ screened: 10, flagged: 5 }, shareOnly), 'suspicious', '50 % by share');
  t.equal(
    suggestVerdict({ screened: 10, flagged: 4 }, shareOnly),
    'no_suspicious_cells',
    '40 % below the share',
  );
});

t.test('suggestVerdict: boundaries are inclusive', async (t) => {
  const shareOnly: VerdictRule = { minScreened: 5, minFlagged: 50, minFlaggedShare: 0.45 };
  t.equal(suggestVerdict({ screened: 20, flagged: 9 }, shareOnly), 'suspicious', '9/20 = 45 % reaches 45 %');
  t.equal(suggestVerdict({ screened: 20, flagged: 8 }, shareOnly), 'no_suspicious_cells', '8/20 = 40 %');
  const thirty: VerdictRule = { minScreened: 5, minFlagged: 50, minFlaggedShare: 0.3 };
  t.equal(suggestVerdict({ screened: 10, flagged: 3 }, thirty), 'suspicious', '3/10 reaches 0.3');
  const countOnly: VerdictRule = { minScreened: 5, minFlagged: 3, minFlaggedShare: 1.01 };
  t.equal(suggestVerdict({ screened: 50, flagged: 3 }, countOnly), 'suspicious', '3 flagged reaches k = 3');
  t.equal(suggestVerdict({ screened: 50, flagged: 2 }, countOnly), 'no_suspicious_cells', '2 flagged');
  t.equal(
    suggestVerdict({ screened: 5, flagged: 0 }, rule),
    'no_suspicious_cells',
    '5 screened reaches n = 5',
  );
  t.equal(suggestVerdict({ screened: 4, flagged: 0 }, rule), 'insufficient', '4 screened is below n = 5');
});

t.test('suggestVerdict: no flagged image is never suspicious, whatever the thresholds', async (t) => {
  const zero: VerdictRule = { minScreened: 1, minFlagged: 0, minFlaggedShare: 0 };
  t.equal(suggestVerdict({ screened: 10, flagged: 0 }, zero), 'no_suspicious_cells');
  t.equal(suggestVerdict({ screened: 10, flagged: 1 }, zero), 'suspicious');
});

t.test('describeRule says the rule in words', async (t) => {
  t.equal(
    describeRule(rule),
    'Suspicious when at least 5 screened images are flagged B-ALL or the flagged share is at least 45 %; ' +
      'insufficient when fewer than 5 images were screened; otherwise no suspicious cells found.',
  );
  t.match(
    describeRule({ minScreened: 3, minFlagged: 1, minFlaggedShare: 0.125 }),
    /at least 1 screened image is flagged B-ALL or the flagged share is at least 12\.5 %; insufficient when fewer than 3 images/,
    'singular image, one decimal of a percent',
  );
  t.match(
    describeRule({ minScreened: 5, minFlagged: 2, minFlaggedShare: 1 / 3 }),
    /at least 33\.3 %/,
    'rounded to 0.1 %',
  );
});
