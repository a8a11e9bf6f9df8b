import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from '../command.js';
import { parseCommandArgs, UsageError, UserError } from '../command.js';
import { BUNDLED_MODEL_DIR, loadConfig } from '../../config/load.js';
import type { Specimen } from '../../domain/specimen.js';
import { createLogger } from '../../log.js';
import type { App } from '../../app.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const SAMPLES = join(REPO, 'test/fixtures/samples');
const TINY_MODEL = join(REPO, 'test/fixtures/tiny-model');
const TOPIC_PREFIX = 'blastwatch/demo-scope';
/** The demo's specimens: images go round-robin into one capture sub-folder per accession number. */
const DEMO_ACCESSIONS = ['DEMO-0001', 'DEMO-0002', 'DEMO-0003'];

function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (/\.(jpe?g|png|tiff?)$/i.test(e.name)) out.push(join(d, e.name));
    }
  };
  walk(dir);
  // Interleave classes so the demo shows a mix early on.
  return out.sort((a, b) => basename(a).replace(/\D/g, '').localeCompare(basename(b).replace(/\D/g, '')));
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const command: Command = {
  name: 'demo',
  summary: 'show the whole flow in one command: temp folders, in-process broker, sample images',
  usage: `usage: blastwatch demo [--images DIR] [--model DIR] [--interval MS] [--port N] [--once]

Starts everything in one process with temporary folders: an MQTT broker (aedes) on a free port,
the daemon watching a temporary capture folder, and the dashboard. Sample images are dropped
into the folder one by one, spread over three specimens (one capture sub-folder per accession
number, the default specimen.assign: folder); alerts and specimen changes are printed as they
arrive over MQTT, and the dashboard's Specimens view shows them. Ctrl-C stops and removes the
temporary folders.
  --images DIR    images to drop (default: the bundled samples, test/fixtures/samples)
  --model DIR     model folder (default: models/, else the tiny test model: meaningless results)
  --interval MS   pause between two images (default 1500)
  --port N        dashboard port (default: a free port)
  --once          exit after every image is processed (for scripts and tests)`,
  async run(argv) {
    const opts = parseDemoArgs(argv);
    const root = mkdtempSync(join(tmpdir(), 'blastwatch-demo-'));
    const cleanup = () => rmSync(root, { recursive: true, force: true });
    const broker = await startBroker();
    const mqttUrl = `mqtt://127.0.0.1:${broker.port}`;
    const config = await demoConfig(root, opts.modelDir, mqttUrl, opts.port);

    const log = createLogger({ level: 'warn', pretty: false });
    const { createApp } = await import('../../app.js');
    const { ModelError } = await import('../../infer/index.js');
    let app;
    try {
      app = await createApp(config, log);
    } catch (err) {
      broker.server.close();
      broker.broker.close();
      cleanup();
      if (err instanceof ModelError) throw new UserError(err.message);
      throw err;
    }
    await app.start();

    const out = (s: string) => process.stdout.write(`${s}\n`);
    printBanner(app, config, opts, out);
    out(`Dropping ${opts.images.length} images, one every ${opts.interval} ms. Ctrl-C to stop.\n`);

    const sub = await printResults(mqttUrl, TOPIC_PREFIX, out);
    const failures = () => app.store.results.counts().failed + app.store.results.counts().quarantined;

    let stopping = false;
    const shutdown = async () => {
      if (stopping) return;
      stopping = true;
      await app.stop();
      await sub.client.endAsync(true).catch(() => undefined);
      await new Promise<void>((r) => broker.broker.close(() => r()));
      broker.server.close();
      cleanup();
    };
    const done = new Promise<void>((resolveDone) => {
      const onSignal = () => {
        out('\nstopping, removing the temporary folders…');
        void shutdown().then(resolveDone);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      void (async () => {
        for (const [i, src] of opts.images.entries()) {
          if (stopping) return;
          const accession = DEMO_ACCESSIONS[i % DEMO_ACCESSIONS.length] as string;
          writeFileSync(
            join(config.capture.dir, accession, `${String(i + 1).padStart(3, '0')}-${basename(src)}`),
            readFileSync(src),
          );
          await new Promise((r) => setTimeout(r, opts.interval));
        }
        if (opts.once) {
          const deadline = Date.now() + 120_000;
          while (sub.results() + failures() < opts.images.length && Date.now() < deadline && !stopping)
            await new Promise((r) => setTimeout(r, 200));
          out(`\n${sub.results()} results, ${app.store.results.counts().flagged} flagged.`);
          printSpecimens(app.store.specimens.list(), out);
          await shutdown();
          resolveDone();
        } else {
          out(`\nAll ${opts.images.length} images dropped. Open ${app.url}/ — Ctrl-C to stop.`);
        }
      })();
    });
    await done;
    return 0;
  },
};

/** Where everything the demo started can be reached, and which model answers. */
function printBanner(
  app: App,
  config: Awaited<ReturnType<typeof demoConfig>>,
  opts: DemoOptions,
  out: (s: string) => void,
): void {
  out(`blastwatch demo — a screening aid, not a diagnosis`);
  out(`  dashboard:  ${app.url}/`);
  out(`  ops API:    ${app.url}/api/results   ${app.url}/metrics`);
  out(
    `  specimens:  ${app.url}/api/specimens   (${DEMO_ACCESSIONS.join(', ')}: one capture sub-folder each)`,
  );
  out(
    `  MQTT:       ${config.mqtt.url}  topics ${config.mqtt.topic_prefix}/{status,result,alert,health,specimen}`,
  );
  out(`  capture:    ${config.capture.dir}`);
  out(
    `  model:      ${app.context.classifier.info.name} ${app.context.classifier.info.version} (${opts.modelDir})`,
  );
  if (opts.tinyModel)
    out(`  NOTE: no trained model in models/: using the tiny TEST model, its flags are meaningless`);
}

interface DemoOptions {
  images: string[];
  modelDir: string;
  /** No trained model in models/: the tiny test model stands in. */
  tinyModel: boolean;
  interval: number;
  port: number | undefined;
  once: boolean;
}

function parseDemoArgs(argv: string[]): DemoOptions {
  const { values } = parseCommandArgs(argv, {
    options: {
      images: { type: 'string' },
      model: { type: 'string' },
      interval: { type: 'string' },
      port: { type: 'string' },
      once: { type: 'boolean' },
    },
  });
  const interval = values.interval === undefined ? 1500 : Number(values.interval);
  if (!Number.isFinite(interval) || interval < 0) throw new UsageError('--interval must be a number of ms');
  const imagesDir = resolve(values.images ?? SAMPLES);
  if (!existsSync(imagesDir)) throw new UserError(`no images in ${imagesDir}: pass --images DIR`);
  const images = listImages(imagesDir);
  if (images.length === 0) throw new UserError(`no .jpg/.png/.tif images in ${imagesDir}`);
  let modelDir = values.model ? resolve(values.model) : BUNDLED_MODEL_DIR;
  let tinyModel = false;
  if (!values.model && !existsSync(join(modelDir, 'model.json'))) {
    if (!existsSync(join(TINY_MODEL, 'model.json')))
      throw new UserError(`no model in ${modelDir}: train one (training/) or pass --model DIR`);
    modelDir = TINY_MODEL;
    tinyModel = true;
  }
  return {
    images,
    modelDir,
    tinyModel,
    interval,
    port: values.port ? Number(values.port) : undefined,
    once: values.once === true,
  };
}

/** An in-process MQTT broker (aedes) on a free loopback port. */
async function startBroker() {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { broker, server, port };
}

/** The default config pointed at the demo's temporary folders, broker and model. */
async function demoConfig(root: string, modelDir: string, mqttUrl: string, httpPort: number | undefined) {
  const { config } = loadConfig(null, {});
  config.device_id = 'demo-scope';
  config.log.level = 'warn';
  config.capture.dir = join(root, 'captures');
  config.capture.stability_ms = 300;
  config.capture.rescan_interval_s = 5;
  config.data.dir = join(root, 'var');
  config.data.min_free_disk_mb = 1;
  config.model.dir = modelDir;
  config.mqtt.url = mqttUrl;
  config.mqtt.client_id = 'blastwatch-demo-scope';
  config.mqtt.topic_prefix = TOPIC_PREFIX;
  config.mqtt.health_interval_s = 10;
  config.http.host = '127.0.0.1';
  config.http.port = httpPort ?? (await freePort());
  for (const accession of DEMO_ACCESSIONS)
    mkdirSync(join(config.capture.dir, accession), { recursive: true });
  return config;
}

/** One line per specimen: its counts and the suggested verdict (a suggestion until a reviewer signs). */
function printSpecimens(specimens: Specimen[], out: (s: string) => void): void {
  out('Specimens (suggested verdict; a reviewer signs on the dashboard):');
  for (const s of [...specimens].sort((a, b) => a.accession.localeCompare(b.accession))) {
    const c = s.counts;
    out(
      `  ${s.accession}  images ${c.images}, screened ${c.screened}, flagged ${c.flagged}, failed ${c.failed}  → suggests ${s.suggestedVerdict}`,
    );
  }
}

/** Subscribes to the demo's topics and prints each result, alert and specimen change; counts the results. */
async function printResults(url: string, prefix: string, out: (s: string) => void) {
  const mqtt = (await import('mqtt')).default;
  const client = mqtt.connect(url, { clientId: 'demo-console' });
  let results = 0;
  client.on('connect', () => client.subscribe(`${prefix}/+`, { qos: 1 }));
  client.on('message', (topic, payload) => {
    if (topic.endsWith('/specimen')) {
      const s = JSON.parse(payload.toString()) as {
        accession: string;
        change: string;
        after: { counts: { images: number; flagged: number }; suggested_verdict: string };
      };
      const { counts } = s.after;
      out(
        `  specimen ${s.accession}  ${s.change}: images ${counts.images}, flagged ${counts.flagged} → suggests ${s.after.suggested_verdict}`,
      );
      return;
    }
    if (!topic.endsWith('/result') && !topic.endsWith('/alert')) return;
    const p = JSON.parse(payload.toString()) as {
      file: string;
      class: string;
      p_ball: number;
      needs_review: boolean;
    };
    const pct = `${(p.p_ball * 100).toFixed(1)}%`.padStart(6);
    if (topic.endsWith('/alert'))
      out(`  ALERT   ${p.file}  class ${p.class}  P(B-ALL) ${pct}  → a hematologist should look`);
    else {
      results += 1;
      out(
        `  result  ${p.file}  class ${p.class}  P(B-ALL) ${pct}${p.needs_review ? '  (uncertain: review)' : ''}`,
      );
    }
  });
  return { client, results: () => results };
}

export default command;
