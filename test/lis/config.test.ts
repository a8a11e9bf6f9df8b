import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { checkConfigRules, loadConfig } from '../../src/config/load.js';
import { configuredDestinations } from '../../src/lis/index.js';
import { tempDir } from './fixtures.js';

t.test('every LIS destination is off by default', async (t) => {
  const { config } = loadConfig(null, {});
  t.equal(config.lis.mllp, null);
  t.equal(config.lis.file_dir, null);
  t.equal(config.lis.fhir, null);
  t.equal(config.lis.fhir_dir, null);
  t.same(configuredDestinations(config.lis), []);
});

t.test('each destination can be turned on from the environment', async (t) => {
  const { config, envOverrides } = loadConfig(null, {
    BLASTWATCH_LIS_MLLP_HOST: 'lis.example.org',
    BLASTWATCH_LIS_MLLP_PORT: '6661',
    BLASTWATCH_LIS_FILE_DIR: 'var/lis-inbox',
    BLASTWATCH_LIS_FHIR_BASE_URL: 'https://fhir.example.org/r4',
    BLASTWATCH_LIS_FHIR_TOKEN: 'abc',
    BLASTWATCH_LIS_FHIR_DIR: '/srv/fhir',
    BLASTWATCH_LIS_LAB_NAME: 'City Lab',
  });
  t.same(config.lis.mllp, {
    host: 'lis.example.org',
    port: 6661,
    ack_timeout_ms: 30_000,
    connect_timeout_ms: 10_000,
  });
  t.match(config.lis.file_dir, /^\/.*var\/lis-inbox$/, 'a relative folder is resolved');
  t.same(config.lis.fhir, { base_url: 'https://fhir.example.org/r4', token: 'abc', timeout_ms: 30_000 });
  t.equal(config.lis.fhir_dir, '/srv/fhir');
  t.equal(config.lis.lab_name, 'City Lab');
  t.same(configuredDestinations(config.lis), ['mllp', 'file', 'fhir', 'fhir_file']);
  t.equal(envOverrides.filter((n) => n.startsWith('BLASTWATCH_LIS_')).length, 7);
});

t.test('a file sets a destination with only its required keys; the rest take their defaults', async (t) => {
  const file = join(tempDir(t), 'lis.yaml');
  writeFileSync(file, 'lis:\n  mllp: {host: 10.0.0.5}\n  fhir: {base_url: "http://fhir.local/r4"}\n');
  const { config } = loadConfig(file, {});
  t.same(config.lis.mllp, {
    host: '10.0.0.5',
    port: 2575,
    ack_timeout_ms: 30_000,
    connect_timeout_ms: 10_000,
  });
  t.equal(config.lis.fhir?.token, null);
});

t.test('mistakes are named by their key path', async (t) => {
  const dir = tempDir(t);
  const cases: [string, RegExp][] = [
    ['lis:\n  mllp: {port: 2575}\n', /lis\.mllp\.host: expected string/],
    ['lis:\n  mllp: {host: x, port: 70000}\n', /lis\.mllp\.port: /],
    [
      'lis:\n  mllp: {host: x, ack_timeout_ms: 5}\n',
      /lis\.mllp\.ack_timeout_ms: a whole number of milliseconds from 100/,
    ],
    ['lis:\n  mllp: {host: x, hots: y}\n', /lis\.mllp\.hots: unknown key/],
    ['lis:\n  fhir: {base_url: ftp://x}\n', /lis\.fhir\.base_url: an http:\/\/ or https:\/\/ URL/],
    ['lis:\n  accession_system: not a uri\n', /lis\.accession_system: a URI/],
    ['lis:\n  fhir_dri: /x\n', /lis\.fhir_dri: unknown key/],
  ];
  for (const [i, [text, pattern]] of cases.entries()) {
    const file = join(dir, `bad${i}.yaml`);
    writeFileSync(file, text);
    t.throws(() => loadConfig(file, {}), pattern, text.trim());
  }
  const file = join(dir, 'backoff.yaml');
  writeFileSync(file, 'lis:\n  retry_min_ms: 5000\n  retry_max_ms: 1000\n');
  const { config } = loadConfig(file, {});
  t.throws(() => checkConfigRules(config), /lis\.retry_min_ms: 5000 ms is more than lis\.retry_max_ms/);
});
