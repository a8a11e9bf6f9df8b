import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { messageControlId } from '../../src/lis/ids.js';
import { makeReport, tempDir, until } from './fixtures.js';
import { freePort, startLis } from './lis-server.js';

const TINY_MODEL = fileURLToPath(new URL('../fixtures/tiny-model/', import.meta.url));

t.test('the daemon delivers what a sign-off enqueues, and a restart sends what was left', async (t) => {
  const root = tempDir(t, 'bw-lis-daemon-');
  const drop = join(root, 'lis-inbox');
  mkdirSync(join(root, 'captures'));
  mkdirSync(drop);
  const port = await freePort();
  const { config } = loadConfig(null, {
    BLASTWATCH_CAPTURE_DIR: join(root, 'captures'),
    BLASTWATCH_DATA_DIR: join(root, 'data'),
    BLASTWATCH_MODEL_DIR: TINY_MODEL,
    BLASTWATCH_HTTP_PORT: '0',
    BLASTWATCH_DEVICE_ID: 'scope-1',
    BLASTWATCH_LIS_FILE_DIR: drop,
    BLASTWATCH_LIS_MLLP_HOST: '127.0.0.1',
    BLASTWATCH_LIS_MLLP_PORT: String(port),
  });
  config.lis.retry_min_ms = 50;
  config.lis.retry_max_ms = 200;
  config.model.threads = 1;
  const log = createLogger({ level: 'error', pretty: false });

  let app = await createApp(config, log);
  await app.start();
  const signed = [makeReport({ id: 1 }), makeReport({ id: 2 })];
  for (const r of signed) app.store.db.transaction(() => app.lis.onSignOff(r))();
  const fileQueue = () => app.lis.delivery?.status().find((d) => d.destination === 'file')?.queued;
  await until(() => fileQueue() === 0, 10_000, 'files written');
  t.same(
    readdirSync(drop).sort(),
    signed.map((r) => `${messageControlId(r)}.hl7`),
  );
  const status = (await (await fetch(`${app.url}/api/lis`)).json()) as {
    destinations: { destination: string; queued: number }[];
  };
  t.same(
    status.destinations.map((d) => [d.destination, d.queued]),
    [
      ['mllp', 2],
      ['file', 0],
    ],
    'the LIS is down: its messages wait; the folder has its files',
  );
  await app.stop();

  const lis = await startLis(port, () => 'AA');
  t.teardown(() => lis.close());
  app = await createApp(config, log);
  t.teardown(() => app.stop());
  await app.start();
  await until(() => lis.accepted.length === 2, 10_000, 'delivered after the restart');
  t.same(lis.accepted, signed.map(messageControlId), 'in sign-off order, once each');
});
