import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEntry, repoRoot } from '../helpers/cli.js';
import { loadConfig } from '../../src/config/load.js';
import { verifyPassword } from '../../src/runtime/password.js';
import { startFixtureServer } from './fixture-server.js';

function run(
  args: string[],
  input: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cliEntry, 'hash-password', ...args], {
      cwd: repoRoot,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

t.test('hash-password prints a hash the dashboard login accepts', async (t) => {
  const r = await run([], 'correct horse battery\n');
  t.equal(r.code, 0, r.stderr);
  const hash = r.stdout.trim();
  t.match(hash, /^scrypt:/);
  t.ok(await verifyPassword('correct horse battery', hash));
  t.notOk(await verifyPassword('correct horse', hash));
});

t.test('--name prints a users entry; short passwords are refused', async (t) => {
  const r = await run(['--name', 'dr-lee'], 'a-long-password\n');
  t.equal(r.code, 0);
  t.match(r.stdout, /^- \{ name: "dr-lee", password_hash: "scrypt:[^"]+" \}\n$/);
  const short = await run([], 'short\n');
  t.equal(short.code, 1);
  t.match(short.stderr, /too short/);
  t.equal(short.stdout, '');
});

t.test('--new-token prints a fresh URL-safe token once, and a hash of it', async (t) => {
  const a = await run(['--new-token'], '');
  t.equal(a.code, 0, a.stderr);
  const [tokenLine, hashLine, ...rest] = a.stdout.split('\n');
  t.same(rest, [''], 'two lines');
  const token = /^token: (bw_[A-Za-z0-9_-]{43})$/.exec(tokenLine ?? '')?.[1];
  t.ok(token, '256 random bits in base64url after bw_');
  const hash = /^api_token_hash: "(scrypt:[^"]+)"$/.exec(hashLine ?? '')?.[1];
  t.ok(hash, 'a line to paste into a users entry');
  t.ok(await verifyPassword(token!, hash!), 'the hash verifies the token');
  t.notOk(await verifyPassword(token!.slice(0, -1), hash!));
  t.match(a.stderr, /shown only this once/);
  const b = await run(['--new-token'], '');
  t.not(b.stdout.split('\n')[0], tokenLine, 'every run makes a different token');
});

t.test('--new-token --name --role prints an entry the config and the dashboard accept', async (t) => {
  const r = await run(['--new-token', '--name', 'lims-bridge', '--role', 'viewer'], '');
  t.equal(r.code, 0, r.stderr);
  const [tokenLine, entry] = r.stdout.split('\n');
  t.match(entry, /^- \{ name: "lims-bridge", role: viewer, api_token_hash: "scrypt:[^"]+" \}$/);
  const token = tokenLine!.slice('token: '.length);
  const dir = mkdtempSync(join(tmpdir(), 'bw-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'lab.yaml'), `http:\n  users:\n    ${entry}\n`);
  const { config } = loadConfig(join(dir, 'lab.yaml'), {});
  t.match(config.http.users[0], { name: 'lims-bridge', role: 'viewer' });
  const s = await startFixtureServer({ loopback: false, users: config.http.users, listen: false });
  t.teardown(() => s.close());
  const res = await s.app.inject({
    url: '/api/dashboard/session',
    headers: { authorization: `Bearer ${token}` },
  });
  t.match(res.json(), { user: 'lims-bridge', role: 'viewer', namedUser: true }, 'the token acts as its user');
});

t.test('--role goes into the entry; it needs --name and a known role', async (t) => {
  const r = await run(['--name', 'dr-lee', '--role', 'admin'], 'a-long-password\n');
  t.equal(r.code, 0);
  t.match(r.stdout, /^- \{ name: "dr-lee", role: admin, password_hash: "scrypt:[^"]+" \}\n$/);
  const bare = await run(['--role', 'admin'], 'a-long-password\n');
  t.equal(bare.code, 2, 'usage error');
  t.match(bare.stderr, /--name/);
  const unknown = await run(['--name', 'x', '--role', 'root', '--new-token'], '');
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /viewer, reviewer, admin/);
  t.equal(unknown.stdout, '', 'no token printed on a usage error');
});
