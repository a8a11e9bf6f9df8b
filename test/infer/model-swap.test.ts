/**
 * The daemon side of the model check on restart: a model file swapped while the daemon runs is
 * found when the crashed worker restarts; the app reports it as fatal (the CLI then exits
 * non-zero for systemd), /readyz names it, and a new start refuses the file.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { ModelError } from '../../src/infer/index.js';
import {
  freePort,
  jpegVariant,
  log,
  makeDirs,
  readResults,
  sampleImages,
  startInProcess,
  until,
} from '../reliability/harness.js';
import { captureLogger, createCrashableClassifier, tinyModelCopy } from './helpers.js';

t.test(
  'model swapped between a crash and the restart: fatal, not ready, refused at the next start',
  async (t) => {
    const dirs = makeDirs('bw-model-swap-');
    t.teardown(() => rmSync(dirs.root, { recursive: true, force: true }));
    const model = await tinyModelCopy();
    t.teardown(model.cleanup);
    const { classifier, crash } = await createCrashableClassifier({
      modelDir: model.dir,
      executionProviders: ['cpu'],
      threads: 1,
      log: captureLogger().log,
    });
    const port = await freePort();
    const over = { mqttUrl: null, httpPort: port, extra: { model: { dir: model.dir } } };
    const d = await startInProcess(dirs, over, { classifier });
    t.teardown(() => d.stop());
    let fatal: string | null = null;
    d.app.onFatal((reason) => (fatal = reason));

    const jpeg = readFileSync(sampleImages()[0] as string);
    writeFileSync(join(dirs.capture, 'a.jpg'), jpegVariant(jpeg, 'a'));
    await until(() => readResults(dirs.data).length === 1, 30_000, 'first image classified');

    // Another model of the same size (one weight byte differs: onnxruntime loads it), then a crash.
    const file = join(model.dir, 'tiny-int8.onnx');
    const bytes = readFileSync(file);
    bytes[8000] = (bytes[8000] as number) ^ 0x01;
    writeFileSync(file, bytes);
    const crashed = new Promise<void>((resolve) => classifier.onError((_e: ModelError) => resolve()));
    crash();
    await crashed;

    // The next image restarts the worker: the check refuses the file.
    writeFileSync(join(dirs.capture, 'b.jpg'), jpegVariant(jpeg, 'b'));
    await until(() => fatal !== null, 30_000, 'the app reports the failure as fatal');
    t.match(fatal, /inference worker failed for good: sha256 mismatch for model file .*tiny-int8\.onnx/);
    const ready = await fetch(`${d.app.url}/readyz`);
    t.equal(ready.status, 503);
    t.match(((await ready.json()) as { reasons: string[] }).reasons, [/^model: failed \(sha256 mismatch/]);
    t.notOk(
      readResults(dirs.data).some((r) => r.file === 'b.jpg' && r.status === 'done'),
      'no image classified by the swapped file',
    );
    await d.stop();

    const { config } = loadConfig(dirs.config, {});
    await t.rejects(createApp(config, log, { plugins: [] }), {
      name: 'ModelError',
      message: /sha256 mismatch for model file .*tiny-int8\.onnx/,
    });
  },
);
