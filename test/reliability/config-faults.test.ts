/**
 * Item 9, config faults: `blastwatch run` with a broken setup must print ONE line that names the
 * problem and exit non-zero, never a stack trace, and never start serving.
 */
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import t from 'tap';
import { stringify } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { freePort, makeDirs, tinyModelDir, writeConfig } from './harness.js';

// The whole file (.taprc's 300 s is per file): slow on a shared 2-core machine.
t.setTimeout(900_000);

const dirs = makeDirs('bw-cfg-');
t.teardown(() => rmSync(dirs.root, { recursive: true, force: true }));

/** A copy of the tiny model that a case may damage. */
function modelCopy(name: string, damage: (dir: string, manifest: Record<string, unknown>) => void): string {
  const dir = join(dirs.root, name);
  cpSync(tinyModelDir, dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as Record<string, unknown>;
  damage(dir, manifest);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(manifest, null, 2));
  return dir;
}

// Each case gets its own data folder: the cases run two at a time, and a daemon holds its data
// folder's lock from the start, so two cases sharing one would see each other instead of their fault.
let dataDirs = 0;
const base = (port: number, model: string) => ({
  capture: { dir: dirs.capture },
  data: { dir: join(dirs.data, `case-${++dataDirs}`) },
  model: { dir: model },
  http: { host: '127.0.0.1', port },
});

interface Case {
  name: string;
  yaml?: string;
  path?: string;
  expect: RegExp;
}

const int8 = 'tiny-int8.onnx';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('every config or model fault is one clear line and a non-zero exit', async (t) => {
  const port = await freePort();
  const cases: Case[] = [
    { name: 'missing config file', path: join(dirs.root, 'nope.yaml'), expect: /nope\.yaml/ },
    {
      name: 'wrong type',
      yaml: stringify({ ...base(port, tinyModelDir), pipeline: { concurrency: 'four' } }),
      expect: /pipeline\.concurrency/,
    },
    {
      name: 'unknown key (a typo)',
      yaml: stringify({ ...base(port, tinyModelDir), captrue: { dir: '/x' } }),
      expect: /captrue/,
    },
    { name: 'not YAML', yaml: 'capture: [unclosed\n  dir: {', expect: /yaml|YAML|parse/i },
    {
      name: 'LAN bind without credentials',
      yaml: stringify({ ...base(port, tinyModelDir), http: { host: '0.0.0.0', port } }),
      expect: /auth|token|password|credential/i,
    },
    {
      // Past 2^31 ms Node's timer fires every millisecond: the daemon would spin, not rescan.
      name: 'rescan interval too large for a timer',
      yaml: stringify({
        ...base(port, tinyModelDir),
        capture: { dir: dirs.capture, rescan_interval_s: 2_200_000 },
      }),
      expect: /capture\.rescan_interval_s: a whole number of seconds from 1 to 86400/,
    },
    {
      name: 'LAN token of spaces',
      yaml: stringify({
        ...base(port, tinyModelDir),
        http: { host: '0.0.0.0', port, auth_token: ' '.repeat(16) },
      }),
      expect: /http\.auth_token: /,
    },
    {
      name: 'model folder missing',
      yaml: stringify(base(port, join(dirs.root, 'no-model'))),
      expect: /no-model/,
    },
    {
      name: 'model file unreadable (a directory where the file should be)',
      yaml: stringify(
        base(
          port,
          modelCopy('m-unreadable', (dir) => {
            rmSync(join(dir, int8));
            mkdirSync(join(dir, int8));
          }),
        ),
      ),
      expect: /tiny-int8\.onnx/,
    },
    {
      name: 'model hash mismatch',
      yaml: stringify(
        base(
          port,
          modelCopy('m-hash', (dir) => {
            const b = readFileSync(join(dir, int8));
            b[b.length - 10] = b[b.length - 10]! ^ 0xff;
            writeFileSync(join(dir, int8), b);
          }),
        ),
      ),
      expect: /sha256|hash/i,
    },
    {
      name: 'model file corrupt but its hash matches (onnxruntime refuses it)',
      yaml: stringify(
        base(
          port,
          modelCopy('m-corrupt', (dir, manifest) => {
            const junk = Buffer.from('this is not an onnx model '.repeat(40));
            writeFileSync(join(dir, int8), junk);
            const files = manifest.files as Record<string, { sha256: string; bytes: number }>;
            files.int8 = { ...files.int8!, sha256: sha(junk), bytes: junk.length };
          }),
        ),
      ),
      expect: /model/i,
    },
  ];
  if (process.getuid?.() !== 0) {
    // chmod 000 means nothing to root (CI runs as root): the directory case above covers it there.
    const dir = modelCopy('m-chmod', () => undefined);
    chmodSync(join(dir, int8), 0);
    cases.push({
      name: 'model file chmod 000',
      yaml: stringify(base(port, dir)),
      expect: /tiny-int8|EACCES/,
    });
  }

  // Two at a time: each is a Node start-up on a shared 2-core machine.
  const run = async (c: Case, i: number) => {
    let cfg = c.path;
    if (!cfg) {
      cfg = join(dirs.root, `case-${i}.yaml`);
      writeFileSync(cfg, c.yaml!);
    }
    return {
      c,
      r: await runCli(['run', '--config', cfg], { env: { BLASTWATCH_CONFIG: '' }, timeoutMs: 180_000 }),
    };
  };
  const results = [];
  for (let i = 0; i < cases.length; i += 2)
    results.push(...(await Promise.all(cases.slice(i, i + 2).map((c, j) => run(c, i + j)))));
  for (const { c, r } of results) {
    t.test(c.name, async (t) => {
      t.not(r.code, 0, `non-zero exit (${r.code})`);
      t.not(r.code, null, 'exited by itself (not killed by the timeout)');
      const lines = r.stderr.trim().split('\n');
      t.equal(lines.length, 1, `one line on stderr: ${r.stderr.trim().slice(0, 300)}`);
      t.notMatch(r.stderr, /\n\s+at |at .*\.(ts|js):\d+/, 'no stack trace');
      t.match(r.stderr, c.expect, 'names the problem');
      t.notMatch(r.stdout, /blastwatch running/, 'never started');
    });
  }
});

t.test('a valid config with the same model starts (the faults above are the only difference)', async (t) => {
  // Guards the cases: if the base config were broken, every case above would pass for the wrong reason.
  const port = await freePort();
  writeConfig(dirs, { mqttUrl: null, httpPort: port });
  const r = await runCli(['check-config', dirs.config], { env: { BLASTWATCH_CONFIG: '' } });
  t.equal(r.code, 0, r.stderr);
});
