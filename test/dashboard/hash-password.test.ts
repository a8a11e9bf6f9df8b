import t from 'tap';
import { spawn } from 'node:child_process';
import { cliEntry, repoRoot } from '../helpers/cli.js';
import { verifyPassword } from '../../src/runtime/password.js';

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
