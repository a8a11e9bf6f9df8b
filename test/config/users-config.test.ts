import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { checkConfigRules, loadConfig } from '../../src/config/load.js';
import { hashPassword } from '../../src/runtime/password.js';

/**
 * http.users with roles and API tokens: what a lab's file may say, what it gets when it says
 * less (configs written before roles existed), and every refusal naming the key to fix.
 */
const dir = mkdtempSync(join(tmpdir(), 'bw-config-users-'));
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
const hash = await hashPassword('microscope-42');
const tokenHash = await hashPassword('bw_0123456789abcdef0123456789abcdef0123456789a');
const otherTokenHash = await hashPassword('bw_fedcba9876543210fedcba9876543210fedcba98765');
const withUsers = (users: unknown[], http: object = {}) => ({ http: { ...http, users } });

t.test('a config written before roles: users keep working, as reviewers', async (t) => {
  const { config } = load(withUsers([{ name: 'dr-lee', password_hash: hash }]));
  const [user] = config.http.users;
  t.equal(user?.name, 'dr-lee');
  t.equal(user?.role, undefined, 'no role written: the default (reviewer) applies where it is used');
  t.notOk(user?.api_token_hash, 'no token');
  t.equal(config.http.auth_token_role, 'reviewer', 'the shared token reviews, as before');
});

t.test('roles, tokens and API-only users are accepted', async (t) => {
  const { config } = load(
    withUsers(
      [
        { name: 'dr-lee', role: 'admin', password_hash: hash, api_token_hash: tokenHash },
        { name: 'lims-bridge', role: 'reviewer', api_token_hash: otherTokenHash },
        { name: 'ward-screen', role: 'viewer', password_hash: hash, api_token_hash: null },
        {
          name: 'script',
          role: 'viewer',
          password_hash: null,
          api_token_hash: await hashPassword('x'.repeat(20)),
        },
      ],
      { auth_token_role: 'viewer' },
    ),
  );
  t.same(
    config.http.users.map((u) => [u.name, u.role]),
    [
      ['dr-lee', 'admin'],
      ['lims-bridge', 'reviewer'],
      ['ward-screen', 'viewer'],
      ['script', 'viewer'],
    ],
  );
  t.equal(config.http.auth_token_role, 'viewer');
  t.doesNotThrow(
    () => checkConfigRules({ ...config, http: { ...config.http, host: '0.0.0.0' } }),
    'users with only tokens are enough to open a LAN bind',
  );
});

t.test('refusals name the key path', async (t) => {
  refused(
    t,
    withUsers([{ name: 'dr-lee', role: 'superuser', password_hash: hash }]),
    /: http\.users\.0\.role: one of viewer, reviewer, admin/,
    'an unknown role',
  );
  refused(
    t,
    withUsers([{ name: 'dr-lee', role: 'admin', password_hash: hash }], { auth_token_role: 'root' }),
    /: http\.auth_token_role: one of viewer, reviewer, admin/,
    'an unknown role for the shared token',
  );
  refused(
    t,
    withUsers([
      { name: 'dr-lee', password_hash: hash },
      { name: 'dr-kim', password_hash: hash },
      { name: 'dr-lee', role: 'viewer', api_token_hash: tokenHash },
    ]),
    /: http\.users\.2\.name: "dr-lee" is already the name of http\.users\.0: names must be unique/,
    'a duplicate name',
  );
  refused(
    t,
    withUsers([
      { name: 'dr-lee', api_token_hash: tokenHash },
      { name: 'dr-kim', api_token_hash: tokenHash },
    ]),
    /: http\.users\.1\.api_token_hash: the same hash as http\.users\.0: give each user a token of her own/,
    'one token hash pasted for two users',
  );
  refused(
    t,
    withUsers([{ name: 'dr-lee', role: 'viewer' }]),
    /: http\.users\.0\.password_hash: a user needs password_hash, api_token_hash or both/,
    'a user who can never authenticate',
  );
  refused(
    t,
    withUsers([{ name: 'dr-lee', password_hash: null, api_token_hash: null }]),
    /: http\.users\.0\.password_hash: a user needs password_hash, api_token_hash or both/,
    'both hashes null',
  );
  refused(
    t,
    withUsers([{ name: 'lims', api_token_hash: 'bw_the-token-itself-not-its-hash' }]),
    /: http\.users\.0\.api_token_hash: not a hash made by 'blastwatch hash-password'/,
    'the token pasted instead of its hash',
  );
  refused(
    t,
    withUsers([{ name: 'dr-lee', password_hash: hash, token: 'x' }]),
    /: http\.users\.0\.token: unknown key/,
    'a misspelt key',
  );
});
