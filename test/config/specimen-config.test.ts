import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';

/** The `specimen:` section: documented defaults, and a pattern refused at load time with its key path. */
const dir = mkdtempSync(join(tmpdir(), 'bw-specimen-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const load = (specimen: unknown) => {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(file, stringify({ specimen }));
  return loadConfig(file, {}).config;
};

t.test('defaults: folder assignment and the rule the simulation chose', async (t) => {
  const { specimen } = loadConfig(null, {}).config;
  t.same(specimen, {
    assign: 'folder',
    pattern: null,
    rule: { min_screened: 5, min_flagged: 5, min_flagged_share: 0.45 },
  });
});

t.test('a pattern with its accession group is accepted', async (t) => {
  const c = load({ assign: 'pattern', pattern: '^(?<accession>[A-Z]{2}\\d{6})_' });
  t.equal(c.specimen.assign, 'pattern');
});

t.test('bad patterns and rules are refused with the key path', async (t) => {
  const refused = (specimen: unknown, message: RegExp, what: string) =>
    t.throws(() => load(specimen), { name: 'ConfigError', message }, what);
  refused(
    { pattern: '(?<accession>[A-Z' },
    /specimen\.pattern: not a valid regular expression/,
    'invalid regex',
  );
  refused(
    { pattern: '^([A-Z]+)_' },
    /specimen\.pattern: needs a named group \(\?<accession>/,
    'no named group',
  );
  refused(
    { assign: 'pattern' },
    /specimen\.pattern: assign: pattern needs a pattern/,
    'pattern mode without one',
  );
  refused({ assign: 'slide' }, /specimen\.assign/, 'unknown mode');
  refused({ rule: { min_flagged_share: 1.5 } }, /specimen\.rule\.min_flagged_share/, 'share above 1');
  refused({ rule: { min_flagged: 0 } }, /specimen\.rule\.min_flagged/, 'zero flagged');
  refused({ rules: {} }, /specimen\.rules: unknown key/, 'a typo');
});
