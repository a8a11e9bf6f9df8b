import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { evaluationInputs, expandImageInputs, pathLines } from '../../src/cli/inputs.js';
import { repoRoot, runCli } from '../helpers/cli.js';
import { tinyModelDir } from '../infer/helpers.js';

/**
 * The image arguments of classify / evaluate: files, folders, `-`, and a command line as long as
 * a day's captures given by absolute path.
 */
const SAMPLES = join(repoRoot, 'test', 'fixtures', 'samples');
const sample = (folder: string): string => {
  const name = readdirSync(join(SAMPLES, folder)).filter((f) => f.endsWith('.jpg'))[0] as string;
  return join(SAMPLES, folder, name);
};
const EXTS = ['.jpg', '.jpeg', '.png', '.tif', '.tiff'];

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'blastwatch-inputs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('expandImageInputs: folders recursively, stdin once, other arguments as given', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'b', 'deeper'), { recursive: true });
  await mkdir(join(dir, '.hidden'));
  for (const f of ['a.jpg', 'b/c.PNG', 'b/deeper/d.tif', 'b/notes.txt', '.dot.jpg', '.hidden/e.jpg'])
    await writeFile(join(dir, f), 'x');
  await symlink(sample('Pro'), join(dir, 'link.jpg'));
  await symlink(join(dir, 'missing.jpg'), join(dir, 'dangling.jpg'));
  await symlink(dir, join(dir, 'b', 'loop'));

  t.same(await expandImageInputs([dir], EXTS), [
    join(dir, 'a.jpg'),
    join(dir, 'b', 'c.PNG'),
    join(dir, 'b', 'deeper', 'd.tif'),
    join(dir, 'link.jpg'),
  ]);
  const stdin = async (): Promise<string> => `# today\n/x/1.jpg\n\n  /x/2.png  \r\n`;
  t.same(await expandImageInputs(['first.jpg', '-', '/no/such.jpg'], EXTS, stdin), [
    'first.jpg',
    '/x/1.jpg',
    '/x/2.png',
    '/no/such.jpg',
  ]);
  await t.rejects(expandImageInputs(['-', '-'], EXTS, stdin), /only once/);
  t.same(pathLines('a\n#b\n\n c \n'), ['a', 'c']);
});

t.test('evaluationInputs: a folder or stdin inside the data folder, relative paths', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'Pro', 'day1'), { recursive: true });
  await writeFile(join(dir, 'Pro', 'day1', 'x.jpg'), 'x');
  t.same(await evaluationInputs(join(dir, 'Pro'), dir, EXTS), [{ relPath: 'Pro/day1/x.jpg' }]);
  t.same(await evaluationInputs('-', dir, EXTS, async () => `Pro/a.jpg\n${join(dir, 'Benign', 'b.jpg')}\n`), [
    { relPath: 'Pro/a.jpg' },
    { relPath: 'Benign/b.jpg' },
  ]);
  await t.rejects(
    evaluationInputs('-', dir, EXTS, async () => '../elsewhere/a.jpg\n'),
    /is not inside the data folder/,
  );
  t.equal(await evaluationInputs(join(dir, 'list.txt'), dir, EXTS), undefined, 'a list file');
});

t.test('classify: 300 images by long absolute path in one command line', async (t) => {
  // A day's captures by absolute path: ~90 characters each, ~27 KB of command line. The
  // onnxruntime telemetry client used to parse /proc/self/cmdline with a recursive regex and
  // overflow the inference worker's stack (SIGSEGV, no output) at about 16 KB.
  const root = await tempDir(t);
  const day = join(root, 'microscope-camera-01', 'captures', '2026', '12', '03', 'smears');
  await mkdir(day, { recursive: true });
  const sources = [sample('Benign'), sample('Pro')];
  const files: string[] = [];
  for (let i = 0; i < 300; i++) {
    const file = join(day, `capture-${String(i).padStart(4, '0')}.jpg`);
    await symlink(sources[i % 2] as string, file);
    files.push(file);
  }
  t.ok(files.join(' ').length > 20_000, `command line of ${files.join(' ').length} characters`);
  const r = await runCli(['classify', '--json', '--model', tinyModelDir, ...files], { timeoutMs: 240_000 });
  t.equal(r.code, 0, `exit code (null: killed by a signal) ${r.stderr.slice(0, 2000)}`);
  const lines = r.stdout.trim().split('\n');
  t.equal(lines.length, 300, 'one line per image');
  t.match(JSON.parse(lines[299] as string), { file: files[299], class: String });
});

t.test('classify: a folder and paths on stdin', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'sub'));
  await symlink(sample('Early'), join(dir, 'one.jpg'));
  await symlink(sample('Pre'), join(dir, 'sub', 'two.jpg'));
  await writeFile(join(dir, 'sub', 'readme.txt'), 'not an image');

  const byFolder = await runCli(['classify', '--json', '--model', tinyModelDir, dir]);
  t.equal(byFolder.code, 0, byFolder.stderr);
  t.same(
    byFolder.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { file: string }).file),
    [join(dir, 'one.jpg'), join(dir, 'sub', 'two.jpg')],
  );

  const piped = await runCli(['classify', '--json', '--model', tinyModelDir, '-'], {
    input: `${join(dir, 'sub', 'two.jpg')}\n${join(dir, 'gone.jpg')}\n`,
  });
  t.equal(piped.code, 1, 'the missing file fails, the other is classified');
  const lines = piped.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(lines, [{ file: join(dir, 'sub', 'two.jpg'), class: String }, { kind: 'not-found' }]);

  const empty = await mkdtemp(join(dir, 'empty-'));
  const none = await runCli(['classify', '--model', tinyModelDir, empty]);
  t.equal(none.code, 1);
  t.match(none.stderr, /no images in /);
});

t.test('evaluate --files with a folder and with stdin', async (t) => {
  const dir = await tempDir(t);
  for (const folder of ['Benign', 'Early', 'Pre', 'Pro']) {
    await mkdir(join(dir, folder, 'day1'), { recursive: true });
    await symlink(sample(folder), join(dir, folder, 'day1', 'a.jpg'));
  }
  const folder = await runCli([
    'evaluate',
    '--json',
    '--data',
    dir,
    '--model',
    tinyModelDir,
    '--files',
    join(dir, 'Pro'),
  ]);
  t.equal(folder.code, 0, folder.stderr);
  t.match(JSON.parse(folder.stdout), { n: 1, per_class: { 'Pro-B': { support: 1 } } });

  const piped = await runCli(['evaluate', '--json', '--data', dir, '--model', tinyModelDir, '--files', '-'], {
    input: `Benign/day1/a.jpg\n${join(dir, 'Early', 'day1', 'a.jpg')}\n`,
  });
  t.equal(piped.code, 0, piped.stderr);
  t.match(JSON.parse(piped.stdout), {
    n: 2,
    per_class: { Benign: { support: 1 }, 'Early Pre-B': { support: 1 } },
  });
});
