/**
 * Specimens survive a crash: the real daemon (child process) and a real mosquitto, three
 * specimens in capture sub-folders, 40 real smear images, SIGKILL in the middle, restart. Every
 * specimen's counts equal its images' results, and the `<prefix>/specimen` change feed carries
 * exactly one message per change: none lost, none duplicated by event id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { freePort, makeDirs, startDaemon, subscribe, until, writeConfig, type Received } from './helpers.js';

const MOSQUITTO = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const SMEARS = '/work/shared/data/all-smears';
const PREFIX = 'blastwatch/e2e-scope';
const ACCESSIONS = ['ACC-001', 'ACC-002', 'ACC-003'];
const N = 40;

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function startMosquitto(root: string, port: number): Promise<ChildProcess> {
  const conf = join(root, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      `user ${userInfo().username}`,
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`mosquitto exited: ${err}`);
      return portOpen(port);
    },
    10_000,
    'mosquitto listening',
  );
  return child;
}

/**
 * 40 real images with distinct bytes (the data set holds a few byte-identical copies, which count
 * once by design), classes interleaved, so each specimen gets a mix.
 */
function realImages(): Buffer[] {
  const byClass = readdirSync(SMEARS)
    .sort()
    .map((cls) =>
      readdirSync(join(SMEARS, cls))
        .filter((n) => /\.jpe?g$/i.test(n))
        .sort()
        .map((n) => join(SMEARS, cls, n)),
    );
  const out: Buffer[] = [];
  const seen = new Set<string>();
  for (let i = 0; out.length < N; i++)
    for (const list of byClass) {
      const path = list[i];
      if (!path || out.length >= N) continue;
      const bytes = readFileSync(path);
      const sha = createHash('sha256').update(bytes).digest('hex');
      if (seen.has(sha)) continue;
      seen.add(sha);
      out.push(bytes);
    }
  return out;
}

interface Row {
  accession: string;
  id: number;
  counts: string;
  revision: number;
}

function readDb(dataDir: string) {
  const db = new Database(join(dataDir, 'blastwatch.db'), { readonly: true, fileMustExist: true });
  try {
    const specimens = db
      .prepare('SELECT id, accession, counts, revision FROM specimens ORDER BY id')
      .all() as Row[];
    const members = (id: number) =>
      db
        .prepare(
          `SELECT r.file, r.status, r.class, r.flag FROM specimen_images m JOIN results r ON r.id = m.result_id
           WHERE m.specimen_id = ?`,
        )
        .all(id) as { file: string; status: string; class: string | null; flag: number | null }[];
    return {
      results: (db.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n,
      unassigned: (
        db
          .prepare(
            'SELECT count(*) AS n FROM results r WHERE NOT EXISTS (SELECT 1 FROM specimen_images m WHERE m.result_id = r.id)',
          )
          .get() as { n: number }
      ).n,
      specimens: specimens.map((s) => ({ ...s, members: members(s.id) })),
      changeEvents: db
        .prepare("SELECT event_id, payload FROM outbox WHERE topic = 'specimen' ORDER BY id")
        .all() as {
        event_id: string;
        payload: string;
      }[],
      unsent: (db.prepare('SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL').get() as { n: number }).n,
      integrity: db.pragma('integrity_check', { simple: true }) as string,
    };
  } finally {
    db.close();
  }
}

const resultCount = (dataDir: string): number => {
  try {
    return readDb(dataDir).results;
  } catch {
    return 0;
  }
};

t.test('SIGKILL mid-batch: specimen counts equal their results, one change message per change', async (t) => {
  if (!existsSync(MOSQUITTO)) return t.fail(`install mosquitto: ${MOSQUITTO} not found`);
  if (!existsSync(SMEARS)) return t.fail(`the shared smear images are missing: ${SMEARS}`);
  const dirs = makeDirs('bw-specimen-crash-');
  const mqttPort = await freePort();
  const mosq = await startMosquitto(dirs.root, mqttPort);
  const url = `mqtt://127.0.0.1:${mqttPort}`;
  const sub = await subscribe(url, PREFIX, 'specimen-crash-sub');
  const httpPort = await freePort();
  writeConfig(dirs, { mqttUrl: url, httpPort });
  t.teardown(async () => {
    await sub.close();
    mosq.kill('SIGTERM');
    rmSync(dirs.root, { recursive: true, force: true });
  });

  const images = realImages();
  const staging = join(dirs.root, 'staging');
  mkdirSync(staging);
  for (const acc of ACCESSIONS) mkdirSync(join(dirs.capture, acc));
  const expected = new Map<string, number>(ACCESSIONS.map((a) => [a, 0]));

  const first = startDaemon(dirs.config, httpPort);
  t.teardown(() => first.child.kill('SIGKILL'));
  await first.ready();
  images.forEach((bytes, i) => {
    const acc = ACCESSIONS[i % ACCESSIONS.length]!;
    expected.set(acc, (expected.get(acc) ?? 0) + 1);
    // Written elsewhere and renamed in: the camera's complete file appears at once.
    const tmp = join(staging, `${i}.jpg`);
    writeFileSync(tmp, bytes);
    renameSync(tmp, join(dirs.capture, acc, `field-${String(i).padStart(2, '0')}.jpg`));
  });
  await until(() => resultCount(dirs.data) >= 8, 120_000, 'first results');
  first.child.kill('SIGKILL');
  t.equal(await first.exited, 'SIGKILL', 'daemon killed');
  const atKill = resultCount(dirs.data);
  t.ok(atKill < N, `killed mid-batch (${atKill} of ${N} stored)`);

  const second = startDaemon(dirs.config, httpPort);
  t.teardown(() => second.child.kill('SIGKILL'));
  await second.ready();
  await until(() => resultCount(dirs.data) === N, 180_000, 'every image stored after the restart').catch(
    (err: Error) => {
      throw new Error(`${err.message} (${resultCount(dirs.data)} stored):\n${second.output().slice(-3000)}`);
    },
  );
  await until(() => readDb(dirs.data).unsent === 0, 60_000, 'outbox drained');

  const db = readDb(dirs.data);
  t.equal(db.integrity, 'ok');
  t.equal(db.unassigned, 0, 'every image is in its specimen');
  // Specimens are created in the order their first image is classified (two at a time): compare as sets.
  t.same(
    db.specimens.map((s) => s.accession).sort(),
    [...ACCESSIONS].sort(),
    'three specimens, one per sub-folder',
  );
  for (const s of db.specimens) {
    const members = s.members;
    t.equal(members.length, expected.get(s.accession), `${s.accession}: all its images`);
    t.ok(
      members.every((m) => m.file.startsWith(`${s.accession}/`)),
      `${s.accession}: only its own folder`,
    );
    const screened = members.filter((m) => m.status === 'done' && m.class !== null);
    const byClass: Record<string, number> = {};
    for (const m of screened) byClass[m.class!] = (byClass[m.class!] ?? 0) + 1;
    t.same(
      JSON.parse(s.counts),
      {
        images: members.length,
        screened: screened.length,
        outOfDomain: members.filter((m) => m.status === 'out_of_domain').length,
        failed: members.filter((m) => m.status === 'failed' || m.status === 'quarantined').length,
        flagged: screened.filter((m) => m.flag === 1).length,
        byClass,
      },
      `${s.accession}: stored counts equal its images' results`,
    );
    t.equal(s.revision, members.length, `${s.accession}: one change per image`);
    t.ok(screened.length > 0, `${s.accession}: real images were classified (${screened.length})`);
  }

  // The feed: every committed change delivered, deduplicated by event id exactly one per change.
  const committed = new Set(db.changeEvents.map((e) => e.event_id));
  const totalChanges = db.specimens.reduce((sum, s) => sum + s.revision, 0);
  t.equal(committed.size, totalChanges, 'one outbox message per change, each its own event id');
  const isSpecimen = (m: Received) => m.topic === `${PREFIX}/specimen`;
  await sub.waitFor(
    (msgs) => new Set(msgs.filter(isSpecimen).map((m) => m.json?.event_id)).size >= committed.size,
    60_000,
    'every specimen change delivered',
  );
  const received = sub.messages.filter(isSpecimen);
  const byEvent = new Map<string, string>();
  const conflicting: string[] = [];
  for (const m of received) {
    const id = String(m.json?.event_id);
    const prev = byEvent.get(id);
    if (prev !== undefined && prev !== m.payload) conflicting.push(id);
    byEvent.set(id, m.payload);
  }
  t.same(
    conflicting,
    [],
    'a repeated event id is always the same message (a re-delivery, never another change)',
  );
  t.same(new Set(byEvent.keys()), committed, 'exactly the committed changes arrived: none lost, none extra');
  const revisions = new Map<string, number[]>();
  for (const payload of byEvent.values()) {
    const p = JSON.parse(payload) as { accession: string; revision: number };
    revisions.set(p.accession, [...(revisions.get(p.accession) ?? []), p.revision]);
  }
  for (const s of db.specimens)
    t.same(
      (revisions.get(s.accession) ?? []).sort((a, b) => a - b),
      Array.from({ length: s.revision }, (_, i) => i + 1),
      `${s.accession}: revisions 1..${s.revision}, each once`,
    );
  t.pass(
    `${received.length} messages received for ${committed.size} changes (${received.length - committed.size} re-deliveries)`,
  );

  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0, 'SIGTERM → exit 0');
});
