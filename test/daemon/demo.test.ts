import t from 'tap';
import { runCli } from '../helpers/cli.js';

t.test(
  'blastwatch demo --once: broker, daemon and samples in one command, alerts printed, temp dirs removed',
  async (t) => {
    const res = await runCli(['demo', '--once', '--interval', '50'], { timeoutMs: 150_000 });
    t.equal(res.code, 0, res.stderr);
    t.match(res.stdout, /dashboard: {2}http:\/\/127\.0\.0\.1:\d+\//, 'dashboard URL printed');
    const results = res.stdout.split('\n').filter((l) => l.trimStart().startsWith('result'));
    t.equal(results.length, 12, 'every sample image produced a result over MQTT');
    const alerts = res.stdout.split('\n').filter((l) => l.trimStart().startsWith('ALERT'));
    const flagged = Number(/(\d+) flagged/.exec(res.stdout)?.[1]);
    t.equal(alerts.length, flagged, 'one printed alert per flagged result');
    const specimens = res.stdout.split('\n').filter((l) => l.trimStart().startsWith('specimen '));
    t.same(
      specimens.map((l) => /specimen {2}(\S+) {2}(\d+) images/.exec(l)?.slice(1)),
      [
        ['DEMO-001', '4'],
        ['DEMO-002', '4'],
        ['DEMO-003', '4'],
      ],
      'the twelve images filed as three specimens of four, each printed',
    );
    t.ok(
      specimens.every((l) => /suggested: (suspicious|insufficient|no suspicious cells found)/.test(l)),
      'with a suggested verdict in words',
    );
    const tmp = /capture: {4}(\S+)\/captures/.exec(res.stdout)?.[1];
    t.ok(tmp, 'temp folder printed');
    const { existsSync } = await import('node:fs');
    t.notOk(existsSync(tmp!), 'temporary folders removed');
  },
);
