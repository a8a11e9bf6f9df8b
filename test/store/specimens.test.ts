/**
 * The specimen layer in the store, on real SQLite files: assignment (folder, pattern, session,
 * upload), aggregation, the verdict rule, sign-off, amendment, the concurrent sign-off, the
 * append-only audit trail and the change feed written to the outbox.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { mqttSchemaValidator } from '../helpers/mqtt-schema.js';
import { classifiedResult } from '../helpers/results.js';
import type { NewResult } from '../../src/domain/result.js';
import { assignmentHint, type AssignmentConfig } from '../../src/domain/specimen-assignment.js';
import { describeRule, suggestVerdict, wilsonInterval } from '../../src/domain/specimen.js';
import type { SpecimenReport } from '../../src/domain/specimen.js';
import { specimenMessages } from '../../src/publish/specimen-payload.js';
import { openStore, SpecimenError, type Store } from '../../src/store/index.js';

const validSpecimen = mqttSchemaValidator('specimen');

const RULE = { minScreened: 5, minFlagged: 2, minFlaggedShare: 0.2 };
const FOLDER: AssignmentConfig = { assign: 'folder', pattern: null };

function tempStore(t: { teardown(fn: () => void): void }, dir?: string): Store {
  const dataDir = dir ?? mkdtempSync(join(tmpdir(), 'bw-specimens-'));
  const store = openStore({
    dataDir,
    specimens: { rule: RULE, deviceId: 'scope-1', changeMessages: specimenMessages('scope-1') },
  });
  t.teardown(() => {
    store.close();
    if (!dir) rmSync(dataDir, { recursive: true, force: true });
  });
  return store;
}

let seq = 0;
function image(file: string, over: Partial<NewResult> = {}): NewResult {
  seq += 1;
  return classifiedResult(`${seq}`.padStart(64, '0'), {
    path: `/captures/${file}`,
    file,
    className: 'Benign',
    classIndex: 0,
    pBall: 0.05,
    flag: false,
    probabilities: { Benign: 0.95, 'Pro-B': 0.05 },
    capturedAt: Date.now(),
    ...over,
  });
}
const flagged = (file: string, over: Partial<NewResult> = {}) =>
  image(file, { className: 'Pro-B', pBall: 0.9, flag: true, ...over });

/** Commits like the pipeline does: result, then its specimen, in one transaction. */
function land(
  store: Store,
  r: NewResult,
  config: AssignmentConfig = FOLDER,
  extra: { accession?: string } = {},
): number {
  const committed = store.results.commit(
    r,
    null,
    () => [],
    (stored) =>
      store.specimens.assignNewResult(
        stored,
        assignmentHint({ relPath: r.file, origin: r.origin, ...extra }, config),
      )?.outbox ?? [],
  );
  return committed.id;
}

const specimenRows = (store: Store) =>
  store.db.prepare("SELECT event_id, payload FROM outbox WHERE topic = 'specimen' ORDER BY id").all() as {
    event_id: string;
    payload: string;
  }[];

t.test('folder mode: the sub-folder is the accession; loose files stay unassigned', async (t) => {
  const store = tempStore(t);
  land(store, image('A1/f1.jpg'));
  land(store, flagged('A1/sub/f2.jpg'));
  land(store, image('B2/f1.jpg'));
  const loose = land(store, image('loose.jpg'));
  land(store, image('bad name!/x.jpg'));
  const a1 = store.specimens.byAccession('A1');
  t.ok(a1, 'A1 created on first sight');
  t.equal(a1?.counts.images, 2, 'nested folders count under the first folder');
  t.equal(store.specimens.byAccession('B2')?.counts.images, 1);
  const unassigned = store.results.list({ specimen: 'none' }).map((r) => r.id);
  t.ok(unassigned.includes(loose), 'a file directly in the capture folder is unassigned');
  t.equal(unassigned.length, 2, 'an invalid accession folder is unassigned too');
  t.equal(store.specimens.list().length, 2);
});

t.test('pattern mode: the named group of the file name', async (t) => {
  const store = tempStore(t);
  const config: AssignmentConfig = { assign: 'pattern', pattern: '^(?<accession>[A-Z]{2}\\d{4})_' };
  land(store, image('day1/AB1234_f1.jpg'), config);
  land(store, image('AB1234_f2.jpg'), config);
  land(store, image('XY0001_f1.jpg'), config);
  land(store, image('nomatch.jpg'), config);
  t.equal(store.specimens.byAccession('AB1234')?.counts.images, 2, 'folders do not matter, the name does');
  t.equal(store.specimens.byAccession('XY0001')?.counts.images, 1);
  t.notOk(store.specimens.byAccession('day1'), 'no folder accession in pattern mode');
  t.equal(store.results.list({ specimen: 'none' }).length, 1);
});

t.test('session: every image captured between start and finish, whatever its folder', async (t) => {
  const store = tempStore(t);
  const before = land(store, image('x.jpg', { capturedAt: Date.now() - 60_000 }));
  const started = store.specimens.start('S-1', 'dr-lee');
  t.equal(started.specimen.status, 'open');
  t.equal(started.specimen.sessionOpen, true);
  t.throws(
    () => store.specimens.start('S-2', 'dr-kim'),
    /session is open for specimen S-1/,
    'one session at a time',
  );
  land(store, image('y.jpg'));
  land(store, image('A9/z.jpg'), FOLDER);
  land(store, image('u.jpg', { origin: 'upload', file: 'upload/u.jpg' }));
  land(store, image('v.jpg', { origin: 'upload', file: 'upload/v.jpg' }), FOLDER, { accession: 'UP-1' });
  const s1 = store.specimens.byAccession('S-1');
  t.equal(s1?.counts.images, 3, 'loose, folder and upload images captured in the session');
  t.equal(store.specimens.byAccession('UP-1')?.counts.images, 1, 'an explicit upload accession wins');
  t.notOk(store.specimens.byAccession('A9'), 'the open session wins over the folder');
  t.equal(store.specimens.specimenIdOf(before), undefined, 'captured before the start: not in the session');
  // A capture time strictly inside the session, however fast this machine runs: the store
  // stamped the start at or before `startedBy`, and stamps the finish after `inSession`.
  const startedBy = Date.now();
  const inSession = startedBy + 1;
  while (Date.now() <= inSession) await new Promise((r) => setTimeout(r, 1));
  const finishedAt = Date.now();
  const fin = store.specimens.finish(s1!.id, 'dr-lee');
  t.equal(fin.specimen.status, 'awaiting_signoff');
  t.equal(fin.specimen.sessionOpen, false);
  land(store, image('late.jpg', { capturedAt: inSession }));
  t.equal(
    store.specimens.get(s1!.id)?.counts.images,
    4,
    'captured before finish, processed after: still in it',
  );
  land(store, image('after.jpg', { capturedAt: finishedAt + 1000 }));
  t.equal(store.specimens.get(s1!.id)?.counts.images, 4, 'captured after finish: not in it');
  const session: AssignmentConfig = { assign: 'session', pattern: null };
  land(store, image('B7/q.jpg', { capturedAt: finishedAt + 1000 }), session);
  t.notOk(store.specimens.byAccession('B7'), 'session mode ignores folders');
});

t.test('aggregation: counts from the members, duplicates once, flagged share with Wilson', async (t) => {
  const store = tempStore(t);
  const dup = flagged('A1/1.jpg');
  land(store, dup);
  land(store, { ...dup, file: 'A1/copy-of-1.jpg', path: '/captures/A1/copy-of-1.jpg' });
  land(store, flagged('A1/2.jpg', { className: 'Pre-B' }));
  land(store, image('A1/3.jpg'));
  land(
    store,
    image('A1/4.jpg', { status: 'failed', sha256: null, className: null, pBall: null, flag: null }),
  );
  land(
    store,
    image('A1/5.jpg', { status: 'quarantined', sha256: null, className: null, pBall: null, flag: null }),
  );
  const s = store.specimens.byAccession('A1')!;
  t.same(s.counts, {
    images: 5,
    screened: 3,
    outOfDomain: 0,
    failed: 2,
    flagged: 2,
    byClass: { Benign: 1, 'Pre-B': 1, 'Pro-B': 1 },
  });
  t.same(
    s.counts,
    store.specimens.countsFromMembers(s.id),
    'the counts added image by image equal a recount',
  );
  const w = wilsonInterval(2, 3);
  t.same(s.flaggedShare, { value: 2 / 3, low: w.low, high: w.high });
  t.equal(s.suggestedVerdict, 'suspicious', '2 flagged ≥ min_flagged');
  const images = store.results.list({ specimen: s.id, order: 'p_ball' });
  t.same(
    images.map((r) => r.pBall),
    [0.9, 0.9, 0.05, null, null],
    'images sorted by P(B-ALL), failures last',
  );
});

t.test('the verdict rule through the store', async (t) => {
  const store = tempStore(t);
  for (let i = 0; i < 4; i++) land(store, image(`N/${i}.jpg`));
  t.equal(store.specimens.byAccession('N')?.suggestedVerdict, 'insufficient', '4 screened < 5');
  land(store, image('N/5.jpg'));
  t.equal(
    store.specimens.byAccession('N')?.suggestedVerdict,
    'no_suspicious_cells',
    '5 screened, none flagged',
  );
  for (let i = 0; i < 9; i++) land(store, image(`K/${i}.jpg`));
  land(store, flagged('K/f.jpg'));
  t.equal(
    store.specimens.byAccession('K')?.suggestedVerdict,
    'no_suspicious_cells',
    '1 of 10 flagged: 10 % < 20 %',
  );
  land(store, flagged('K/g.jpg'));
  t.equal(store.specimens.byAccession('K')?.suggestedVerdict, 'suspicious', '2 flagged');
  land(store, flagged('X/1.jpg'));
  t.equal(
    store.specimens.byAccession('X')?.suggestedVerdict,
    'suspicious',
    'one flagged of one: share 100 %',
  );
  t.equal(suggestVerdict({ screened: 0, flagged: 0 }, RULE), 'insufficient');
  t.match(describeRule(RULE), /at least 2 screened images are flagged.*20 %.*fewer than 5/);
});

t.test('Wilson interval: known values and the edges', async (t) => {
  const a = wilsonInterval(0, 10);
  t.equal(a.low, 0);
  t.ok(Math.abs(a.high - 0.2775) < 1e-4, `0/10 → high ${a.high}`);
  const b = wilsonInterval(5, 10);
  t.ok(Math.abs(b.low - 0.2366) < 1e-4 && Math.abs(b.high - 0.7634) < 1e-4, `5/10 → ${b.low}..${b.high}`);
  const c = wilsonInterval(10, 10);
  t.ok(c.high > 1 - 1e-12 && c.high <= 1, `10/10 → high ${c.high}`);
  t.ok(Math.abs(c.low - 0.7225) < 1e-4);
  t.same(wilsonInterval(0, 0), { low: 0, high: 1 });
});

t.test(
  'sign, lock, amend: versions, suggestion kept apart, audit, the LIS hook in the transaction',
  async (t) => {
    const store = tempStore(t);
    for (let i = 0; i < 5; i++) land(store, image(`A/${i}.jpg`));
    const id = store.specimens.byAccession('A')!.id;
    const reports: SpecimenReport[] = [];
    const signed = store.signOffs.sign(
      id,
      { verdict: 'suspicious', comment: 'blasts seen' },
      'dr-lee',
      (r) => {
        reports.push(r);
        t.ok(store.db.inTransaction, 'onSignOff runs inside the sign-off transaction');
      },
    );
    t.equal(signed.specimen.status, 'signed');
    t.equal(signed.specimen.finalVerdict, 'suspicious');
    t.equal(
      signed.specimen.suggestedVerdict,
      'no_suspicious_cells',
      'the model suggestion is kept separately',
    );
    t.equal(reports.length, 1);
    t.equal(reports[0]?.amended, false);
    t.equal(reports[0]?.signOff.suggestedVerdict, 'no_suspicious_cells');
    t.equal(reports[0]?.deviceId, 'scope-1');
    t.equal(reports[0]?.model.version, '1');

    land(store, flagged('A/late.jpg'));
    t.equal(store.specimens.get(id)?.counts.images, 5, 'a signed specimen is locked: no new images');
    t.equal(store.results.list({ specimen: 'none' }).length, 1, 'the late image is unassigned');
    t.throws(() => store.specimens.finish(id, 'x'), SpecimenError);

    t.throws(
      () => store.signOffs.amend(id, { verdict: 'insufficient', comment: null, reason: '  ' }, 'dr-kim'),
      /needs a reason/,
    );
    const amended = store.signOffs.amend(
      id,
      { verdict: 'no_suspicious_cells', comment: 'artefacts', reason: 'second look', basedOnVersion: 1 },
      'dr-kim',
      (r) => reports.push(r),
    );
    t.equal(amended.specimen.status, 'amended');
    t.equal(amended.specimen.signOff?.version, 2);
    t.equal(amended.specimen.signOff?.reason, 'second look');
    t.equal(reports[1]?.amended, true);
    t.throws(
      () =>
        store.signOffs.amend(
          id,
          { verdict: 'suspicious', comment: null, reason: 'stale', basedOnVersion: 1 },
          'dr-lee',
        ),
      /amended by dr-kim/,
      'an amendment based on an old version is refused',
    );
    t.same(
      store.specimens.signOffs(id).map((s) => [s.version, s.verdict, s.signer]),
      [
        [1, 'suspicious', 'dr-lee'],
        [2, 'no_suspicious_cells', 'dr-kim'],
      ],
    );
    const actions = store.specimens.audit(id).map((a) => a.action);
    t.ok(actions.includes('signed') && actions.includes('amended') && actions.includes('amend_refused'));
    t.ok(actions.includes('image_refused'), 'the refused late image is audited');
    t.same(
      store.specimens.agreement(),
      { signed: 1, agreed: 1, rate: 1 },
      'the latest (amended) verdict equals the suggestion recorded with it',
    );

    t.throws(() => store.db.prepare('UPDATE specimen_audit SET actor = ?').run('mallory'), /append-only/);
    t.throws(() => store.db.prepare('DELETE FROM specimen_audit').run(), /never deleted/);
    t.throws(() => store.db.prepare('DELETE FROM specimen_signoffs').run(), /never deleted/);
  },
);

t.test(
  "the report carries people's readings of out-of-domain fields, as they stood at each signature",
  async (t) => {
    const store = tempStore(t);
    for (let i = 0; i < 5; i++) land(store, image(`R/${i}.jpg`));
    const noVerdict = { className: null, classIndex: null, pBall: null, flag: null, needsReview: null };
    const withheld = (file: string) =>
      land(
        store,
        image(file, {
          status: 'out_of_domain',
          ...noVerdict,
          domain: { in: false, reasons: ['features_disagree'], scores: { featureMargin: 0.3 } },
        }),
      );
    const readLater = withheld('R/withheld-1.jpg');
    const neverRead = withheld('R/withheld-2.jpg');
    const blank = land(
      store,
      image('R/blank.jpg', {
        status: 'out_of_domain',
        ...noVerdict,
        domain: { in: false, reasons: ['underexposed'], scores: { meanLuma: 3 } },
      }),
    );
    land(
      store,
      image('R/other-camera.jpg', {
        status: 'out_of_domain',
        ...noVerdict,
        domain: { in: false, reasons: ['appearance'], scores: {} },
      }),
    );
    const id = store.specimens.byAccession('R')!.id;
    const screened = store.results.list({ specimen: id, limit: 10 });
    store.reviews.add({ resultId: readLater, reviewer: 'dr-lee', className: 'Benign' });
    store.reviews.add({ resultId: readLater, reviewer: 'dr-lee', className: 'Pre-B' });
    store.reviews.add({ resultId: blank, reviewer: 'dr-lee', className: 'Benign' });
    const screenedImage = screened.find((r) => r.status === 'done')!;
    store.reviews.add({ resultId: screenedImage.id, reviewer: 'dr-lee', className: 'Pro-B' });

    const reports: SpecimenReport[] = [];
    store.signOffs.sign(id, { verdict: 'suspicious', comment: null }, 'dr-lee', (r) => reports.push(r));
    t.same(
      reports[0]?.readings,
      {
        byClass: { 'Pre-B': 1, Benign: 1 },
        unreadWithheld: 1,
        images: [
          { resultId: readLater, file: 'R/withheld-1.jpg', className: 'Pre-B', reviewer: 'dr-lee' },
          { resultId: blank, file: 'R/blank.jpg', className: 'Benign', reviewer: 'dr-lee' },
        ],
      },
      "each out-of-domain field's latest reading, pictures in the order read; a screened image's " +
        'review is not one of them; ' +
        'the unread withheld benign call is counted, the unread other-camera field is not',
    );

    const signedMessage = specimenRows(store)
      .map((row) => JSON.parse(row.payload) as Record<string, unknown>)
      .find((m) => m.accession === 'R' && m.change === 'signed');
    t.ok(validSpecimen(signedMessage), JSON.stringify(validSpecimen.errors));
    t.same(
      signedMessage?.readings,
      { read: 2, by_class: { 'Pre-B': 1, Benign: 1 }, unread_withheld: 1 },
      'the change feed carries what the report says',
    );
    t.match(
      store.specimens.audit(id).find((a) => a.action === 'signed')?.details,
      { out_of_domain_read: { 'Pre-B': 1, Benign: 1 }, withheld_unread: 1 },
      'the audit trail keeps what the signer had read',
    );

    await new Promise((r) => setTimeout(r, 5)); // readings strictly after the signature
    store.reviews.add({ resultId: neverRead, reviewer: 'dr-kim', className: 'Pro-B' });
    store.reviews.add({ resultId: readLater, reviewer: 'dr-kim', className: 'Benign' });
    t.same(
      store.signOffs.report(store.specimens.get(id)!).readings,
      reports[0]?.readings,
      'the signed report, fetched again, is the one that was signed: later readings are not in it',
    );

    store.signOffs.amend(
      id,
      { verdict: 'suspicious', comment: null, reason: 'withheld fields read', basedOnVersion: 1 },
      'dr-kim',
      (r) => reports.push(r),
    );
    t.same(
      reports[1]?.readings,
      {
        byClass: { Benign: 2, 'Pro-B': 1 },
        unreadWithheld: 0,
        images: [
          { resultId: blank, file: 'R/blank.jpg', className: 'Benign', reviewer: 'dr-lee' },
          { resultId: neverRead, file: 'R/withheld-2.jpg', className: 'Pro-B', reviewer: 'dr-kim' },
          { resultId: readLater, file: 'R/withheld-1.jpg', className: 'Benign', reviewer: 'dr-kim' },
        ],
      },
      'the amendment carries the readings as they stand at its own signature',
    );
    const amendedEntry = store.specimens.audit(id).find((a) => a.action === 'amended');
    t.same(amendedEntry?.details.out_of_domain_read, { Benign: 2, 'Pro-B': 1 });
    t.notOk('withheld_unread' in (amendedEntry?.details ?? {}), 'nothing left unread: not written');
    const feed = specimenRows(store).map((row) => JSON.parse(row.payload) as Record<string, unknown>);
    t.match(
      feed.filter((m) => m.accession === 'R' && m.change === 'amended'),
      [{ readings: { read: 3, by_class: { Benign: 2, 'Pro-B': 1 }, unread_withheld: 0 } }],
    );
    t.notOk(
      feed.some((m) => m.change !== 'signed' && m.change !== 'amended' && 'readings' in m),
      'only signatures carry readings',
    );
  },
);

t.test('the list counts the withheld fields nobody has read, as the signature would', async (t) => {
  const store = tempStore(t);
  const noVerdict = { className: null, classIndex: null, pBall: null, flag: null, needsReview: null };
  const outOfDomain = (file: string, reasons: ('features_disagree' | 'underexposed')[]) =>
    land(
      store,
      image(file, { status: 'out_of_domain', ...noVerdict, domain: { in: false, reasons, scores: {} } }),
    );
  land(store, image('W/screened.jpg'));
  land(store, flagged('W/flagged.jpg'));
  const first = outOfDomain('W/withheld-1.jpg', ['features_disagree']);
  const second = outOfDomain('W/withheld-2.jpg', ['underexposed', 'features_disagree']);
  const blank = outOfDomain('W/blank.jpg', ['underexposed']);
  land(store, image('Q/screened.jpg'));
  const w = store.specimens.byAccession('W')!.id;
  const q = store.specimens.byAccession('Q')!.id;

  const unread = (status?: 'open') =>
    Object.fromEntries(
      store.specimens.list(status ? { status } : {}).map((s) => [s.accession, s.unreadWithheld]),
    );
  const asSigned = () => store.results.outOfDomainReadings(w, Date.now()).unreadWithheld;
  t.same(unread(), { W: 2, Q: 0 }, 'a blank field asks for no one; a screened image is not withheld');
  t.equal(asSigned(), 2, 'what a signature now would record as unread');
  t.equal(store.specimens.listed(w)?.unreadWithheld, 2, 'one specimen as the list gives it');
  t.equal(store.specimens.listed(q)?.unreadWithheld, 0);
  t.equal(store.specimens.listed(999), undefined);
  t.equal(store.specimens.get(w)?.unreadWithheld, undefined, 'not read where an image lands');

  store.reviews.add({ resultId: blank, reviewer: 'dr-lee', className: 'Benign' });
  t.same(unread(), { W: 2, Q: 0 }, 'reading a field that asked for no one changes nothing');
  store.reviews.add({ resultId: first, reviewer: 'dr-lee', className: 'Pre-B' });
  store.reviews.add({ resultId: first, reviewer: 'dr-kim', className: 'Benign' });
  t.same(unread(), { W: 1, Q: 0 }, 'a field read twice counts once');
  t.equal(asSigned(), 1);
  t.same(unread('open'), { W: 1, Q: 0 }, 'with a status filter too');
  store.reviews.add({ resultId: second, reviewer: 'dr-lee', className: 'Benign' });
  t.same(unread(), { W: 0, Q: 0 });
  t.equal(asSigned(), 0);
});

t.test(
  'two reviewers sign at once: exactly one wins, the other is told who, the attempt is audited',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'bw-race-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const a = tempStore(t, dir);
    // A second connection to the same file, as a second process would have.
    const b = tempStore(t, dir);
    for (let i = 0; i < 5; i++) land(a, image(`R/${i}.jpg`));
    const id = a.specimens.byAccession('R')!.id;
    const outcomes = await Promise.allSettled([
      Promise.resolve().then(() => a.signOffs.sign(id, { verdict: 'suspicious', comment: null }, 'dr-lee')),
      Promise.resolve().then(() =>
        b.signOffs.sign(id, { verdict: 'no_suspicious_cells', comment: null }, 'dr-kim'),
      ),
    ]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    t.equal(won.length, 1, 'one sign-off stored');
    t.equal(lost.length, 1, 'one refused');
    t.equal((lost[0]?.reason as SpecimenError).statusCode, 409);
    t.match((lost[0]?.reason as Error).message, /already signed by dr-lee/);
    t.equal(a.specimens.signOffs(id).length, 1);
    const refused = b.specimens.audit(id).filter((e) => e.action === 'sign_refused');
    t.equal(refused.length, 1, 'the refused attempt is in the audit trail');
    t.equal(refused[0]?.actor, 'dr-kim');
    t.equal(refused[0]?.details.verdict, 'no_suspicious_cells', 'with what she wanted to sign');
  },
);

t.test('change feed: one schema-valid outbox message per change, stable distinct event ids', async (t) => {
  const store = tempStore(t);
  const started = store.specimens.start('F-1', 'dr-lee');
  land(store, flagged('a.jpg'));
  land(store, image('b.jpg'));
  const id = started.specimen.id;
  store.specimens.finish(id, 'dr-lee');
  store.signOffs.sign(id, { verdict: 'suspicious', comment: null }, 'dr-lee');
  const rows = specimenRows(store);
  t.equal(rows.length, 5, 'start, 2 images, finish, sign');
  const payloads = rows.map((r) => JSON.parse(r.payload) as Record<string, unknown>);
  for (const p of payloads) t.ok(validSpecimen(p), JSON.stringify(validSpecimen.errors));
  t.same(
    payloads.map((p) => p.change),
    ['session_started', 'image_added', 'image_added', 'finished', 'signed'],
  );
  t.same(
    payloads.map((p) => p.revision),
    [1, 2, 3, 4, 5],
  );
  t.equal(new Set(rows.map((r) => r.event_id)).size, 5, 'distinct event ids');
  t.equal(payloads[0]?.before, null, 'created: no before');
  const last = payloads[4] as {
    before: { status: string };
    after: { status: string; signer: string; final_verdict: string };
  };
  t.equal(last.before.status, 'awaiting_signoff');
  t.same(
    [last.after.status, last.after.signer, last.after.final_verdict],
    ['signed', 'dr-lee', 'suspicious'],
  );
  t.notOk(validSpecimen({ ...payloads[0], accession: 'a b' }), 'the schema rejects a bad accession');
});

t.test('manual assignment of unassigned images, audited; a taken image is refused', async (t) => {
  const store = tempStore(t);
  const loose = land(store, image('loose.jpg'));
  const taken = land(store, image('B/1.jpg'));
  const s = store.specimens.start('M-1', 'dr-lee').specimen;
  store.specimens.finish(s.id, 'dr-lee');
  const w = store.specimens.assignImages(s.id, [loose], 'dr-lee');
  t.equal(w.specimen.counts.images, 1);
  t.equal(store.results.list({ specimen: 'none' }).length, 0);
  t.throws(() => store.specimens.assignImages(s.id, [taken], 'dr-lee'), /already belongs to specimen B/);
  t.throws(() => store.specimens.assignImages(s.id, [99999], 'dr-lee'), /no result 99999/);
  const last = store.specimens.audit(s.id).at(-1);
  t.equal(last?.action, 'images_assigned');
  t.same(last?.details.result_ids, [loose]);
});

t.test(
  'capture clock: files stamped ahead, and captures stamped before the session they arrived in',
  async (t) => {
    const store = tempStore(t);
    const session: AssignmentConfig = { assign: 'session', pattern: null };
    const now = Date.now();
    const noSession = { captures: 0, minBeforeMs: 0, maxBeforeMs: 0, accession: null };
    land(store, image('ahead.jpg', { capturedAt: now + 60_000, processedAt: now }), session);
    land(store, image('step.jpg', { capturedAt: now + 3_000, processedAt: now }), session);
    land(store, image('upload/ahead.jpg', { origin: 'upload', capturedAt: now + 90_000, processedAt: now }));
    t.same(
      store.captureClock.check(50),
      { captures: 2, ahead: 1, maxAheadMs: 60_000, beforeSession: [], longBeforeSession: noSession },
      'a file modified a minute after it was read is ahead; a few seconds is a clock step; uploads are not captures',
    );
    t.same(
      store.captureClock.check(1),
      { captures: 1, ahead: 0, maxAheadMs: 3_000, beforeSession: [], longBeforeSession: noSession },
      'the latest only',
    );

    const started = store.specimens.start('S-9', 'dr-lee');
    const startedAt = store.specimens.openSession()!.startedAt;
    const early = land(
      store,
      image('field-01.jpg', { capturedAt: startedAt - 58_000, processedAt: startedAt }),
      session,
    );
    land(
      store,
      image('yesterday.jpg', { capturedAt: startedAt - 86_400_000, processedAt: startedAt + 1 }),
      session,
    );
    land(store, image('field-02.jpg', { capturedAt: startedAt, processedAt: startedAt + 2 }), session);
    const inFolder = land(
      store,
      image('B1/f.jpg', { capturedAt: startedAt - 1_000, processedAt: startedAt + 3 }),
      FOLDER,
    );
    t.equal(store.specimens.get(started.specimen.id)?.counts.images, 1, 'only field-02 joined the session');
    t.equal(
      store.specimens.specimenIdOf(inFolder),
      store.specimens.byAccession('B1')?.id,
      'its folder took one',
    );

    const expected = [
      {
        resultId: early,
        file: 'field-01.jpg',
        beforeMs: 58_000,
        specimenId: started.specimen.id,
        accession: 'S-9',
      },
    ];
    t.same(
      store.captureClock.check(50).beforeSession,
      expected,
      'one near miss: not the day-old file, not the one its folder took',
    );
    t.same(
      store.captureClock.beforeSessionOf(started.specimen.id),
      expected,
      "on the specimen's own list too",
    );
    t.same(
      store.captureClock.beforeSessionOf(store.specimens.byAccession('B1')!.id),
      [],
      'a specimen without sessions has none',
    );
    t.same(
      store.captureClock.check(50).longBeforeSession,
      { captures: 1, minBeforeMs: 86_400_000, maxBeforeMs: 86_400_000, accession: 'S-9' },
      'the day-old file is counted as stamped long before the session, not listed',
    );
    // A writer's clock 20 minutes behind: the session's next captures all miss it too.
    for (const [i, behind] of [20, 21].entries())
      land(
        store,
        image(`late-${i}.jpg`, { capturedAt: startedAt - behind * 60_000, processedAt: startedAt + 10 + i }),
        session,
      );
    t.same(store.captureClock.check(50).longBeforeSession, {
      captures: 3,
      minBeforeMs: 20 * 60_000,
      maxBeforeMs: 86_400_000,
      accession: 'S-9',
    });
    t.equal(store.captureClock.check(50).beforeSession.length, 1, 'the near misses are as they were');
    t.equal(store.captureClock.check(2).longBeforeSession.captures, 2, 'over the latest captures only');

    // Finished: no longer health's business, still on the specimen's list; assigned: gone from both.
    store.specimens.finish(started.specimen.id, 'dr-lee');
    t.same(store.captureClock.check(50).beforeSession, [], 'health looks at the open session only');
    t.same(store.captureClock.check(50).longBeforeSession, noSession);
    t.same(store.captureClock.beforeSessionOf(started.specimen.id), expected);
    store.specimens.assignImages(started.specimen.id, [early], 'dr-lee');
    t.same(store.captureClock.check(50).beforeSession, []);
    t.same(store.captureClock.beforeSessionOf(started.specimen.id), []);
  },
);
