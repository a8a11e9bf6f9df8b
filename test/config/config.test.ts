import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfigRules, ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { runCli } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'bw-config-'));
const write = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

t.test('the documented defaults are valid and are the defaults', async (t) => {
  const { config, files } = loadConfig(null, {});
  t.same(files, [DEFAULT_CONFIG_PATH]);
  t.equal(config.http.host, '127.0.0.1');
  t.equal(config.segment.k, 7);
  t.equal(config.segment.threshold, 141);
  t.equal(config.mqtt.url, null, 'MQTT is off unless configured');
  t.match(config.mqtt.topic_prefix, /^blastwatch\//);
  t.doesNotThrow(() => checkConfigRules(config));
});

t.test('every schema key is documented in config/default.yaml', async (t) => {
  const text = readFileSync(DEFAULT_CONFIG_PATH, 'utf8');
  const walk = (shape: Record<string, unknown>, prefix: string): void => {
    for (const [key, value] of Object.entries(shape)) {
      // A key is documented when it appears as `key:` preceded by a comment line somewhere above.
      t.match(text, new RegExp(`^\\s*${key}:`, 'm'), `${prefix}${key} appears in default.yaml`);
      const inner = (value as { def?: { shape?: Record<string, unknown> } }).def?.shape;
      if (inner) walk(inner, `${prefix}${key}.`);
    }
  };
  walk(configSchema.shape as unknown as Record<string, unknown>, '');
});

t.test('a user file overrides only the keys it names', async (t) => {
  const file = write('partial.yaml', 'capture:\n  dir: /srv/captures\nhttp:\n  port: 9000\n');
  const { config } = loadConfig(file, {});
  t.equal(config.capture.dir, '/srv/captures');
  t.equal(config.http.port, 9000);
  t.equal(config.capture.stability_ms, 1500, 'untouched sibling keeps its default');
});

t.test('errors name the key path and the reason', async (t) => {
  const cases: [string, RegExp][] = [
    ['capture:\n  dir: 5\n', /capture\.dir: expected string, received number/],
    ['captur:\n  dir: x\n', /captur: unknown key/],
    ['http:\n  prot: 80\n', /http\.prot: unknown key/],
    ['model:\n  execution_providers: [tpu]\n', /model\.execution_providers\.0: /],
    ['model:\n  uncertain_band: [0.9, 0.1]\n', /model\.uncertain_band: low must not exceed high/],
    ['mqtt:\n  url: http://broker\n', /mqtt\.url: a URL starting with mqtt:\/\//],
    ['capture: [1, 2\n', /not valid YAML/],
    ['- a\n- b\n', /expected a mapping/],
  ];
  for (const [i, [text, pattern]] of cases.entries()) {
    const file = write(`bad${i}.yaml`, text);
    t.throws(() => loadConfig(file, {}), { name: 'ConfigError', message: pattern }, text.trim());
  }
  t.throws(() => loadConfig(join(dir, 'missing.yaml'), {}), {
    message: /cannot read config file .*no such file/,
  });
});

t.test('environment overrides apply and are validated', async (t) => {
  const { config, envOverrides } = loadConfig(null, {
    BLASTWATCH_CAPTURE_DIR: '/mnt/zeiss',
    BLASTWATCH_DATA_DIR: '/var/lib/blastwatch',
    BLASTWATCH_MQTT_URL: 'mqtt://lab-broker:1883',
    BLASTWATCH_HTTP_HOST: '0.0.0.0',
    BLASTWATCH_HTTP_PORT: '8443',
    BLASTWATCH_AUTH_TOKEN: 'a-long-enough-lab-token',
    BLASTWATCH_EXECUTION_PROVIDERS: 'cuda, cpu',
  });
  t.equal(config.capture.dir, '/mnt/zeiss');
  t.equal(config.data.dir, '/var/lib/blastwatch');
  t.equal(config.mqtt.url, 'mqtt://lab-broker:1883');
  t.equal(config.http.port, 8443);
  t.same(config.model.execution_providers, ['cuda', 'cpu']);
  t.equal(envOverrides.length, 7);
  t.doesNotThrow(() => checkConfigRules(config), 'LAN bind with a token is allowed');
  t.throws(() => loadConfig(null, { BLASTWATCH_HTTP_PORT: 'eighty' }), {
    message: /environment: BLASTWATCH_HTTP_PORT.*http\.port: expected number/,
  });
  const file = write('via-env.yaml', 'log:\n  level: debug\n');
  t.equal(loadConfig(undefined, { BLASTWATCH_CONFIG: file }).config.log.level, 'debug', 'BLASTWATCH_CONFIG');
});

t.test('a LAN bind without credentials is refused', async (t) => {
  const { config } = loadConfig(null, { BLASTWATCH_HTTP_HOST: '0.0.0.0' });
  t.throws(() => checkConfigRules(config), ConfigError);
  for (const host of ['127.0.0.1', 'localhost', '::1']) {
    const loop = loadConfig(null, { BLASTWATCH_HTTP_HOST: host }).config;
    t.doesNotThrow(() => checkConfigRules(loop), `${host} needs no credentials`);
  }
});

t.test('check-config prints one line and exits 1 on a bad file, never a stack trace', async (t) => {
  const bad = write('cli-bad.yaml', 'capture:\n  dir: 5\n');
  const r = await runCli(['check-config', bad]);
  t.equal(r.code, 1);
  t.match(r.stderr, /capture\.dir: expected string, received number/);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.equal(r.stderr.trim().split('\n').length, 1);
  const good = await runCli(['check-config', '--print'], { env: { BLASTWATCH_MQTT_PASSWORD: 'secret-pw' } });
  t.equal(good.code, 0);
  t.match(good.stdout, /^ok: /);
  t.notMatch(good.stdout, /secret-pw/, 'secrets are masked');
});

t.test('the watcher probe and the MQTT reconnect delay are config keys with bounds', async (t) => {
  const { config } = loadConfig(null, {});
  t.equal(config.capture.dir_probe_interval_ms, null, 'null: derived from rescan_interval_s');
  t.equal(config.mqtt.reconnect_ms, 2000);
  const ok = loadConfig(
    write('probe-ok.yaml', 'capture:\n  dir_probe_interval_ms: 200\nmqtt:\n  reconnect_ms: 200\n'),
    {},
  );
  t.same([ok.config.capture.dir_probe_interval_ms, ok.config.mqtt.reconnect_ms], [200, 200]);
  for (const [name, text, pattern] of [
    ['probe-low', 'capture:\n  dir_probe_interval_ms: 10\n', /capture\.dir_probe_interval_ms/],
    ['probe-high', 'capture:\n  dir_probe_interval_ms: 3600000\n', /capture\.dir_probe_interval_ms/],
    ['reconnect-low', 'mqtt:\n  reconnect_ms: 0\n', /mqtt\.reconnect_ms/],
    ['reconnect-high', 'mqtt:\n  reconnect_ms: 86400000\n', /mqtt\.reconnect_ms/],
  ] as const) {
    t.throws(
      () => loadConfig(write(`${name}.yaml`, text), {}),
      { name: 'ConfigError', message: pattern },
      name,
    );
  }
});
