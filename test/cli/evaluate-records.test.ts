/**
 * `blastwatch evaluate --records FILE` through the real CLI with the bundled model: one CSV row per
 * image, agreeing with the summary the same run prints, and the readable report naming the silent
 * misses. The images are test-split fields at magnification ×0.75, the camera shift under which
 * the shipped model lets blasts through unflagged (models/MODEL_CARD.md): four of the Early Pre-B
 * fields it missed there, with others of every class and a file that is no image.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import t from 'tap';
import { runCli } from '../helpers/cli.js';
import { parseCameraShift } from '../../scripts/camera-shifts.js';

const dataDir =
  process.env.BLASTWATCH_DATA ?? fileURLToPath(new URL('../../../shared/data/all-smears', import.meta.url));
const CLASSES = ['Benign', 'Early Pre-B', 'Pre-B', 'Pro-B'];
/** The flag threshold the bundled model ships with, which the CLI applies (config default null). */
const THRESHOLD = (
  JSON.parse(readFileSync(new URL('../../models/model.json', import.meta.url), 'utf8')) as {
    threshold: number;
  }
).threshold;
const FIELDS = [
  'Benign/WBC-Benign-420.jpg',
  'Benign/WBC-Benign-462.jpg',
  'Early/WBC-Malignant-Early-241.jpg',
  'Early/WBC-Malignant-Early-242.jpg',
  'Early/WBC-Malignant-Early-398.jpg',
  'Early/WBC-Malignant-Early-419.jpg',
  'Early/WBC-Malignant-Early-504.jpg',
  'Pre/WBC-Malignant-Pre-269.jpg',
  'Pro/WBC-Malignant-Pro-001.jpg',
];

/** RFC 4180 rows as the records file writes them (quoted text, bare numbers, CRLF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  for (const line of text.split('\r\n').filter((l) => l.length > 0)) {
    const cells: string[] = [];
    for (const m of line.matchAll(/"((?:[^"]|"")*)"|([^,]*)/g)) {
      if (m.index > 0 && line[m.index - 1] !== ',') continue;
      cells.push(m[1] !== undefined ? m[1].replace(/""/g, '"') : (m[2] ?? ''));
    }
    rows.push(cells);
  }
  return rows;
}

if (!existsSync(dataDir)) {
  t.fail(`data set not found at ${dataDir}: set BLASTWATCH_DATA to the all-smears folder`);
} else
  t.test('evaluate --records: one row per image, the summary agrees, the silent misses named', async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'bw-eval-records-'));
    t.teardown(() => rm(root, { recursive: true, force: true }));
    const data = join(root, 'check');
    const smaller = parseCameraShift('magnification:0.75');
    for (const field of FIELDS) {
      const [folder, name] = field.split('/') as [string, string];
      await mkdir(join(data, folder), { recursive: true });
      const source = join(dataDir, folder, name);
      const shifted = await smaller.apply(await readFile(source), source);
      await writeFile(join(data, folder, name.replace(/\.jpg$/, '.png')), shifted.bytes);
    }
    await writeFile(join(data, 'Early', 'broken.jpg'), 'not a picture');
    // The camera between two slides: a blank bright frame, which the gate refuses.
    const blank = { create: { width: 640, height: 480, channels: 3 as const, background: '#f4f1ee' } };
    await sharp(blank)
      .png()
      .toFile(join(data, 'Benign', 'blank.png'));
    const records = join(root, 'records.csv');

    const text = await runCli(['evaluate', '--data', data, '--records', records]);
    t.equal(text.code, 1, 'a file failed: exit 1, as without --records');
    const rows = parseCsv(await readFile(records, 'utf8'));
    const header = rows[0]!;
    t.same(header, [
      'file',
      'sha256',
      'truth',
      'status',
      'reasons',
      'class',
      'p_ball',
      'flagged',
      'needs_review',
      'correct',
      'silent_miss',
      ...CLASSES.map((c) => `p_${c}`),
      'red_cell_radius_px',
      'error',
    ]);
    const body = rows.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
    t.equal(body.length, FIELDS.length + 2, 'every image has a row, the failed one too');
    for (const r of body) t.equal(Object.keys(r).length, header.length);

    const broken = body.find((r) => r.file === 'Early/broken.jpg');
    t.match(broken, { status: 'failed', truth: 'Early Pre-B', class: '', p_ball: '' });
    t.ok(broken?.error, 'the failed row says why');

    const refused = body.find((r) => r.file === 'Benign/blank.png');
    t.match(refused, {
      status: 'out_of_domain',
      flagged: '',
      needs_review: '',
      correct: '',
      silent_miss: '',
    });
    t.ok(refused?.reasons, 'a refused image names its reasons');
    t.ok(refused?.class, 'and what the model would have said of it');

    const classified = body.filter((r) => r.status !== 'failed');
    for (const r of classified.filter((c) => c.status === 'accepted')) {
      const probabilities = CLASSES.map((c) => Number(r[`p_${c}`]));
      const predicted = CLASSES[probabilities.indexOf(Math.max(...probabilities))];
      t.equal(r.class, predicted, `${r.file}: the class is the most probable one`);
      t.equal(r.correct, r.class === r.truth ? 'yes' : 'no', `${r.file}: correct`);
      t.equal(Number(r.p_ball), Number((1 - Number(r.p_Benign)).toFixed(6)), `${r.file}: P(B-ALL)`);
      t.equal(
        r.flagged,
        Number(r.p_ball) >= THRESHOLD ? 'yes' : 'no',
        `${r.file}: flagged at the model's threshold`,
      );
      const silent = r.truth !== 'Benign' && r.flagged === 'no';
      t.equal(r.silent_miss, silent ? 'yes' : 'no', `${r.file}: silent miss`);
      t.equal(r.reasons, '', `${r.file}: no reasons for an accepted image`);
    }
    const missed = classified.filter((r) => r.silent_miss === 'yes').map((r) => r.file);
    t.ok(missed.length > 0, 'at ×0.75 the bundled model lets some of these blasts through unflagged');

    const json = await runCli(['evaluate', '--json', '--data', data]);
    const m = JSON.parse(json.stdout) as {
      n: number;
      n_accepted: number;
      silent_misses: number;
      accuracy: number;
    };
    t.equal(m.n, classified.length);
    t.equal(m.n_accepted, classified.filter((r) => r.status === 'accepted').length);
    t.equal(m.silent_misses, missed.length, 'the summary counts the rows marked silent_miss');
    const rightAccepted = classified.filter((r) => r.status === 'accepted' && r.correct === 'yes').length;
    t.equal(Math.round(m.accuracy * m.n_accepted), rightAccepted, 'and its accuracy the rows marked correct');

    const listed = text.stdout.slice(text.stdout.indexOf('the silent misses, to look at first:'));
    for (const file of missed) t.match(listed, `    ${file} (P(B-ALL) `, `the report names ${file}`);
    t.equal(listed.match(/\(P\(B-ALL\) /g)?.length, Math.min(10, missed.length));

    const unwritable = await runCli([
      'evaluate',
      '--data',
      data,
      '--records',
      join(root, 'no-such-folder', 'records.csv'),
    ]);
    t.equal(unwritable.code, 1, 'a records file that cannot be written: exit 1');
    t.match(unwritable.stderr, /--records .*no-such-folder.*: ENOENT/);
    t.notMatch(unwritable.stderr, /\n\s+at /, 'one line, no stack trace');
  });
