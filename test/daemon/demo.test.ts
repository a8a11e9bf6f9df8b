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
    for (const accession of ['DEMO-0001', 'DEMO-0002', 'DEMO-0003'])
      t.match(
        res.stdout,
        new RegExp(
          `^ {2}${accession} {2}images 4, screened \\d+, flagged \\d+, failed \\d+ {2}→ suggests \\w+$`,
          'm',
        ),
        `specimen ${accession} summarised with its four images`,
      );
    t.match(res.stdout, /specimen DEMO-0001 {2}created: images 1/, 'specimen changes printed from MQTT');
    const tmp = /capture: {4}(\S+)\/captures/.exec(res.stdout)?.[1];
    t.ok(tmp, 'temp folder printed');
    const { existsSync } = await import('node:fs');
    t.notOk(existsSync(tmp!), 'temporary folders removed');
  },
);
