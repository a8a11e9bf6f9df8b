import { readFileSync } from 'node:fs';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { DEFAULT_VERDICT_RULE } from '../../src/store/specimens.js';

// The specimen rule a lab gets by default is the one the simulation chose: the model card's
// "Specimen-level screening" names it, config/default.yaml sets it, and a store opened without a
// config uses the same.
t.test('the default verdict rule is the one the model card reports as chosen', async (t) => {
  const card = readFileSync(new URL('../../models/MODEL_CARD.md', import.meta.url), 'utf8');
  const m =
    /\*\*Defaults: min_flagged k = (\d+), min_flagged_share x = ([\d.]+), min_screened n = (\d+)\.\*\*/.exec(
      card,
    );
  t.ok(m, 'the card names the chosen defaults');
  if (!m) return;
  const chosen = { min_flagged: Number(m[1]), min_flagged_share: Number(m[2]), min_screened: Number(m[3]) };
  const { config } = loadConfig(null, {});
  t.same(config.specimen.rule, chosen, 'config/default.yaml');
  t.same(
    DEFAULT_VERDICT_RULE,
    {
      minFlagged: chosen.min_flagged,
      minFlaggedShare: chosen.min_flagged_share,
      minScreened: chosen.min_screened,
    },
    'the store default',
  );
});
