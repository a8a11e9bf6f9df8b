import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { repoRoot } from '../helpers/cli.js';

const run = promisify(execFile);

/** The seconds-long version of the gate report: every set it measures, a few images each. */
t.test('gate-report --quick measures every set and refuses frames without a smear', async (t) => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'scripts/gate-report.ts', '--quick'], {
    cwd: repoRoot,
    maxBuffer: 1 << 22,
  });
  const report = JSON.parse(stdout) as {
    gateChecking: boolean;
    test: { n: number; accepted: number; accuracyOnAccepted: number; silentMisses: number };
    shifts: Record<string, { n: number; acceptedShare: number }>;
    bccd: { rule: string; development: { n: number }; heldOut: { n: number; acceptedShare: number } };
    nonSmear: Record<string, { n: number; accepted: number }>;
    judgeMs: { median: number };
  };
  t.ok(report.gateChecking);
  t.equal(report.test.n, 8);
  t.equal(report.test.accepted, 8, 'data-set test images are in domain');
  t.equal(report.test.silentMisses, 0);
  t.same(Object.keys(report.shifts), ['brightness:1.2', 'blur:2', 'stretch:1024x768']);
  t.equal(report.bccd.development.n + report.bccd.heldOut.n, 8);
  t.match(report.bccd.rule, /even positions = development half, odd positions = held-out half/);
  for (const set of ['blank', 'black', 'brightness:0.4'])
    t.equal(report.nonSmear[set]?.accepted, 0, `${set}: every frame refused`);
  t.ok(report.judgeMs.median > 0 && report.judgeMs.median < 50);
});
