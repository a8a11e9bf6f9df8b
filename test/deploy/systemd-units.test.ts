/**
 * The systemd units as systemd reads them: `systemd-analyze verify` names every key it ignores
 * (a key in the wrong section is dropped with only that warning, and the unit runs without it).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../daemon/helpers.js';

const dir = join(repoRoot, 'systemd');
const units = readdirSync(dir).filter((n) => /\.(service|timer)$/.test(n));
const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });

t.test(
  'every unit verifies without a warning',
  { skip: analyze.error ? 'systemd-analyze is not installed here' : false },
  async (t) => {
    t.ok(units.includes('blastwatch.service') && units.includes('blastwatch-backup.timer'));
    for (const unit of units) {
      const r = spawnSync('systemd-analyze', ['verify', join(dir, unit)], { encoding: 'utf8' });
      t.equal(r.status, 0, `${unit}: ${r.stderr}`);
      // Paths the units name (/usr/bin/node, /opt/blastwatch) need not exist on a build machine.
      const warnings = r.stderr
        .split('\n')
        .filter((l) => l.trim() !== '' && !/is not executable|No such file or directory/.test(l));
      t.same(warnings, [], `${unit}: no ignored or unknown key`);
    }
  },
);
