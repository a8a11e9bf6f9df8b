import { fileURLToPath } from 'node:url';
import t from 'tap';
import { checkConfigRules, loadConfig } from '../../src/config/load.js';
import { createClassifier } from '../../src/infer/index.js';
import { captureLogger, fakePair, tinyModelDir } from './helpers.js';

const jetson = fileURLToPath(new URL('../../config/jetson.yaml', import.meta.url));
const pi = fileURLToPath(new URL('../../config/pi.yaml', import.meta.url));

t.test('config/pi.yaml merges over the defaults and validates', async (t) => {
  const { config, files } = loadConfig(pi, {});
  t.equal(files[1], pi);
  t.same(config.model.execution_providers, ['cpu']);
  t.equal(config.model.threads, 4);
  t.equal(config.pipeline.concurrency, 1);
  t.equal(config.capture.use_polling, false);
  t.equal(config.data.retention_days, 365);
  t.ok(config.data.retention_max_rows > 0, 'bounded database on an SD card');
  t.equal(config.segment.threshold, 141, 'segmentation untouched (it is the model input)');
  t.doesNotThrow(() => checkConfigRules(config));
});

t.test('config/jetson.yaml asks for CUDA then CPU, and falls back here with one warning', async (t) => {
  const { config } = loadConfig(jetson, {});
  t.same(config.model.execution_providers, ['cuda', 'cpu']);
  t.ok(config.model.threads > 0);
  t.doesNotThrow(() => checkConfigRules(config));
  // The daemon passes exactly these values; this machine has no CUDA provider.
  const { log, lines } = captureLogger();
  const c = await createClassifier({
    modelDir: tinyModelDir,
    executionProviders: config.model.execution_providers,
    threads: config.model.threads,
    threshold: config.model.threshold,
    uncertainBand: config.model.uncertain_band,
    log,
  });
  t.teardown(() => c.close());
  t.equal(c.info.executionProvider, 'cpu');
  t.equal(c.info.precision, 'int8');
  t.equal(c.info.threads, config.model.threads);
  t.equal(lines.filter((l) => l.level === 40).length, 1);
  const [p] = await c.classify([fakePair(4)]);
  t.ok(p && Math.abs(p.probabilities.reduce((s, v) => s + v, 0) - 1) < 1e-9);
});
