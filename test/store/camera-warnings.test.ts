/**
 * A specimen keeps the camera warnings its images arrived under (real SQLite): one row per watch,
 * counting its images; the signature's audit entry and its MQTT change message name them;
 * retention drops them with an unsigned specimen and keeps them with a signed one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { mqttSchemaValidator } from '../helpers/mqtt-schema.js';
import type { CameraWarning } from '../../src/domain/camera-warning.js';
import { specimenMessages } from '../../src/publish/specimen-payload.js';
import { openStore, type Store } from '../../src/store/index.js';
import { landInFolder } from '../helpers/results.js';

const validSpecimen = mqttSchemaValidator('specimen');

const DAY = 86_400_000;
const MAGNIFICATION: CameraWarning = { watch: 'magnification', text: 'magnification changed? 5.90 px' };
const GREEN: CameraWarning = { watch: 'colour_drift', text: 'white balance changed? 1.060' };

/** One capture stored and assigned by its folder, as the pipeline does; its specimen's id. */
const land = (store: Store, file: string, at: number): number =>
  store.specimens.specimenIdOf(landInFolder(store, file, at).id)!;

t.test('one row per watch counts the images; the signature names the watches', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-camera-warnings-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = openStore({ dataDir: dir, specimens: { changeMessages: specimenMessages('scope-1') } });
  t.teardown(() => store.close());
  const t0 = Date.now();

  const clean = land(store, 'CLEAN/1.jpg', t0);
  t.same(store.cameraWarnings.of(clean), [], 'no warning noted: none kept');

  const id = land(store, 'WARNED/1.jpg', t0);
  store.cameraWarnings.note(id, [MAGNIFICATION], t0 + 1000);
  land(store, 'WARNED/2.jpg', t0);
  store.cameraWarnings.note(
    id,
    [{ ...MAGNIFICATION, text: 'magnification changed? 5.80 px' }, GREEN],
    t0 + 2000,
  );
  t.same(store.cameraWarnings.of(id), [
    {
      watch: 'magnification',
      text: 'magnification changed? 5.80 px',
      firstAt: t0 + 1000,
      lastAt: t0 + 2000,
      images: 2,
    },
    { watch: 'colour_drift', text: GREEN.text, firstAt: t0 + 2000, lastAt: t0 + 2000, images: 1 },
  ]);
  t.same(store.cameraWarnings.of(clean), [], 'another specimen keeps its own');

  store.signOffs.sign(id, { verdict: 'insufficient', comment: null }, 'dr-lee');
  const signed = store.specimens.audit(id).find((a) => a.action === 'signed');
  t.same(signed?.details.camera_warnings, ['magnification', 'colour_drift'], 'the signature names them');
  store.signOffs.sign(clean, { verdict: 'insufficient', comment: null }, 'dr-lee');
  const cleanSigned = store.specimens.audit(clean).find((a) => a.action === 'signed');
  t.notOk(cleanSigned && 'camera_warnings' in cleanSigned.details, 'and says nothing when there were none');

  // The MQTT change feed: each signature names the watches, an empty list when none warned.
  const signatures = (
    store.db.prepare("SELECT payload FROM outbox WHERE topic = 'specimen' ORDER BY id").all() as {
      payload: string;
    }[]
  )
    .map((row) => JSON.parse(row.payload) as Record<string, unknown>)
    .filter((m) => m.change === 'signed');
  t.same(
    signatures.map((m) => [m.accession, m.camera_warned]),
    [
      ['WARNED', ['magnification', 'colour_drift']],
      ['CLEAN', []],
    ],
  );
  for (const m of signatures) t.ok(validSpecimen(m), JSON.stringify(validSpecimen.errors));
  t.notOk(
    (
      store.db.prepare("SELECT payload FROM outbox WHERE topic = 'specimen'").all() as { payload: string }[]
    ).some((row) => {
      const m = JSON.parse(row.payload) as Record<string, unknown>;
      return m.change !== 'signed' && 'camera_warned' in m;
    }),
    'only signatures carry them',
  );
});

t.test("retention drops them with an unsigned specimen and keeps a signed one's", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-camera-warnings-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = openStore({ dataDir: dir });
  t.teardown(() => store.close());
  const now = Date.now();
  const old = now - 40 * DAY;
  const gone = land(store, 'GONE/1.jpg', old);
  store.cameraWarnings.note(gone, [MAGNIFICATION], old);
  const kept = land(store, 'KEPT/1.jpg', old);
  store.cameraWarnings.note(kept, [GREEN], old);
  store.signOffs.sign(kept, { verdict: 'insufficient', comment: null }, 'dr-lee');

  store.retention.apply({ days: 30, maxRows: 0, now });
  t.notOk(store.specimens.get(gone), 'the unsigned specimen is gone');
  const rows = (id: number) =>
    (
      store.db
        .prepare('SELECT count(*) AS n FROM specimen_camera_warnings WHERE specimen_id = ?')
        .get(id) as {
        n: number;
      }
    ).n;
  t.equal(rows(gone), 0, 'with its camera warnings');
  t.same(
    store.cameraWarnings.of(kept).map((w) => w.watch),
    ['colour_drift'],
    'a signed specimen keeps them with its record',
  );
  t.same(store.db.pragma('foreign_key_check'), [], 'no dangling references');
});
