import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { hashPassword } from '../../src/runtime/password.js';

/**
 * Values that pass a type check but can never work: timer intervals Node cannot hold, secrets
 * nobody can send or that anyone can guess, password hashes the login can never match, MQTT
 * prefixes a broker refuses. Each is refused at load time with the key path.
 */
const dir = mkdtempSync(join(tmpdir(), 'bw-config-values-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const load = (doc: unknown) => {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(file, stringify(doc));
  return loadConfig(file, {});
};
const refused = (t: Test, doc: unknown, message: RegExp, what: string): void => {
  t.throws(() => load(doc), { name: 'ConfigError', message }, what);
};

/** Every duration key, its unit and its inclusive range. */
const DURATIONS: Array<[section: string, key: string, min: number, max: number]> = [
  ['capture', 'poll_interval_ms', 100, 60_000],
  ['capture', 'stability_ms', 0, 600_000],
  ['capture', 'rescan_interval_s', 1, 86_400],
  ['capture', 'retry_backoff_ms', 10, 600_000],
  ['data', 'maintenance_interval_s', 10, 86_400],
  ['mqtt', 'keepalive_s', 1, 3600],
  ['mqtt', 'health_interval_s', 1, 86_400],
  ['mqtt', 'shutdown_flush_ms', 0, 60_000],
];
const TIMER_OVERFLOW_MS = 2 ** 31;

t.test('every duration has a range that Node timers can hold', async (t) => {
  for (const [section, key, min, max] of DURATIONS) {
    const path = new RegExp(
      `config error in .*c\\d+\\.yaml: ${section}\\.${key}: a whole number of (seconds|milliseconds) from ${min} to ${max} \\(`,
    );
    const scale = key.endsWith('_s') ? 1000 : 1;
    t.ok(max * scale < TIMER_OVERFLOW_MS, `${section}.${key} max fits a timer`);
    t.equal(load({ [section]: { [key]: min } }).config[section as 'capture'][key as 'stability_ms'], min);
    t.equal(load({ [section]: { [key]: max } }).config[section as 'capture'][key as 'stability_ms'], max);
    refused(t, { [section]: { [key]: max + 1 } }, path, `${section}.${key} above its maximum`);
    refused(t, { [section]: { [key]: min - 1 } }, path, `${section}.${key} below its minimum`);
    // The values that made the daemon spin: a delay Node's 32-bit timer cannot hold.
    refused(
      t,
      { [section]: { [key]: Math.ceil(TIMER_OVERFLOW_MS / scale) } },
      path,
      `${section}.${key} past 2^31 ms`,
    );
    refused(t, { [section]: { [key]: min + 0.5 } }, path, `${section}.${key} not whole`);
  }
});

t.test('http.auth_token must be sendable and not trivially guessed', async (t) => {
  for (const token of [
    ' '.repeat(16),
    ' '.repeat(40),
    'a'.repeat(32),
    'short-token',
    'has a space in the middle!',
    'tab\tinside-0123456789',
    'ünïcödé-0123456789abc',
  ])
    refused(t, { http: { auth_token: token } }, /http\.auth_token: /, JSON.stringify(token));
  t.equal(
    load({ http: { auth_token: 'lan-token-0123456789abcdef' } }).config.http.auth_token,
    'lan-token-0123456789abcdef',
  );
  t.equal(load({ http: { auth_token: 'ab'.repeat(8) } }).config.http.auth_token, 'ab'.repeat(8));
});

t.test('every password hash must be one that blastwatch hash-password makes', async (t) => {
  const good = await hashPassword('microscope-42');
  const users = (hash: string) => ({
    http: {
      users: [
        { name: 'dr-lee', password_hash: good },
        { name: 'dr-kim', password_hash: hash },
      ],
    },
  });
  t.equal(load(users(good)).config.http.users.length, 2);
  const [, N, r, p, salt, key] = good.split(':') as string[];
  for (const bad of [
    'scrypt:',
    'scrypt:garbage',
    `scrypt:${N}:${r}:${p}:${salt}`,
    `scrypt:1000:${r}:${p}:${salt}:${key}`,
    `scrypt:${N}:${r}:${p}::${key}`,
    `bcrypt:${N}:${r}:${p}:${salt}:${key}`,
    'microscope-42',
  ])
    refused(
      t,
      users(bad),
      /http\.users\.1\.password_hash: not a hash made by 'blastwatch hash-password'/,
      bad,
    );
});

t.test('mqtt.topic_prefix must be a topic name a client may publish under', async (t) => {
  for (const prefix of ['b', 'lab', 'lab/haematology/scope-1', 'a/b', 'blast$watch'])
    t.equal(load({ mqtt: { topic_prefix: prefix } }).config.mqtt.topic_prefix, prefix, prefix);
  for (const prefix of [
    'lab\u0000x',
    'lab/+/x',
    'lab/#',
    '+',
    '#',
    '$SYS/blastwatch',
    '$',
    'lab/',
    'lab scope',
    '',
  ])
    refused(t, { mqtt: { topic_prefix: prefix } }, /mqtt\.topic_prefix: /, JSON.stringify(prefix));
});
