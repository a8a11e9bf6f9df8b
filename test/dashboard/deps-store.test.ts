// DashboardDeps over the real daemon (store, pipeline, bus): filters, review queue and audit
// history, export, images by id (TIFF original falls back to the thumbnail), status, day counts.
import t from 'tap';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { createStoreDeps } from '../../src/serve/dashboard/deps-store.js';
import { ReviewError, type ResultView } from '../../src/serve/dashboard/deps.js';
import { reviewsToCsv } from '../../src/serve/dashboard/plugin.js';
import { startDaemonHarness } from './harness.js';
import { sample } from './memory-deps.js';

const BAD = fileURLToPath(new URL('../fixtures/bad/', import.meta.url));

t.test('store-backed dashboard deps', async (t) => {
  const h = await startDaemonHarness();
  t.teardown(() => h.close());
  const deps = createStoreDeps(h.app!.context);
  const live: ResultView[] = [];
  const onResult = (r: ResultView) => live.push(r);
  deps.events.on('result', onResult);

  const tif = join(tmpdir(), `bw-deps-${process.pid}.tif`);
  await sharp(sample('Early', 0)).tiff().toFile(tif);
  await h.drop(sample('Pro', 0), 'a-pro.jpg');
  await h.drop(sample('Benign', 0), 'b-benign.jpg');
  await h.drop(sample('Pre', 0), 'c 100%_pre.jpg');
  await h.drop(tif, 'd-early.tif');
  await h.drop(`${BAD}random-bytes.jpg`, 'e-broken.jpg');
  deps.events.off('result', onResult);
  t.same(
    live.map((r) => r.file),
    ['a-pro.jpg', 'b-benign.jpg', 'c 100%_pre.jpg', 'd-early.tif', 'e-broken.jpg'],
    'every stored result reached the live feed',
  );

  const meta = deps.meta();
  t.equal(meta.benignClass, 'Benign');
  t.equal(meta.classes[0]!.label, 'Benign (hematogones)');
  t.equal(meta.deviceId, 'test-scope');

  const all = deps.listResults({ limit: 50 });
  t.same(
    all.map((r) => r.file),
    ['e-broken.jpg', 'd-early.tif', 'c 100%_pre.jpg', 'b-benign.jpg', 'a-pro.jpg'],
    'newest first',
  );
  const broken = all[0]!;
  t.equal(broken.status, 'failed');
  t.ok(broken.error, 'the failure has its reason');
  t.equal(broken.flag, null);
  t.equal(broken.needsReview, false, 'an unreadable file is not in the review queue');

  t.same(
    deps.listResults({ limit: 50, search: '100%' }).map((r) => r.file),
    ['c 100%_pre.jpg'],
    '% is a character, not a wildcard',
  );
  t.same(
    deps.listResults({ limit: 50, search: '_PRE' }).map((r) => r.file),
    ['c 100%_pre.jpg'],
  );
  const pro = all.find((r) => r.file === 'a-pro.jpg')!;
  const sameClass = deps.listResults({ limit: 50, class: pro.class! });
  t.ok(sameClass.length >= 1 && sameClass.every((r) => r.class === pro.class), 'class filter');
  const threshold = deps.status().threshold!;
  const flagged = deps.listResults({ limit: 50, flaggedOnly: true });
  t.ok(
    flagged.every((r) => (r.pBall ?? 0) >= threshold),
    'flagged only: P(B-ALL) at or above the threshold',
  );
  const hour = 3600_000;
  const iso = (ms: number) => new Date(ms).toISOString();
  t.equal(deps.listResults({ limit: 50, from: iso(Date.now() + hour) }).length, 0, 'from in the future');
  t.equal(deps.listResults({ limit: 50, to: iso(Date.now() - hour) }).length, 0, 'to in the past');
  t.equal(
    deps.listResults({ limit: 50, from: iso(Date.now() - hour), to: iso(Date.now() + hour) }).length,
    5,
  );
  t.same(
    deps.listResults({ limit: 2, before: all[1]!.id }).map((r) => r.id),
    [all[2]!.id, all[3]!.id],
    'paging with before',
  );

  // Images by id.
  const jpgOriginal = deps.imagePath(pro.id, 'original');
  t.match(jpgOriginal, /a-pro\.jpg$/, 'a JPEG original is the captured file');
  const tifResult = all.find((r) => r.file === 'd-early.tif')!;
  const tifShown = await deps.readImage(tifResult.id, 'original');
  const tifThumb = await deps.readImage(tifResult.id, 'thumbnail');
  t.ok(tifShown?.ok && tifThumb?.ok, 'a TIFF original is shown ...');
  if (tifShown?.ok && tifThumb?.ok) {
    t.same(tifShown.bytes, tifThumb.bytes, '... as its thumbnail');
    t.equal(tifShown.type, 'image/jpeg');
  }
  for (const [kind, type] of [
    ['thumbnail', 'image/jpeg'],
    ['mask', 'image/png'],
    ['segmented', 'image/jpeg'],
  ] as const) {
    const read = await deps.readImage(pro.id, kind);
    t.ok(read?.ok && read.bytes.length > 0 && read.type === type, `${kind} stored (${type})`);
  }
  t.equal(deps.imagePath(broken.id, 'original'), undefined, 'no picture for an unreadable file');
  t.equal(deps.imagePath(broken.id, 'mask'), undefined);
  t.equal(deps.imagePath(999_999, 'thumbnail'), undefined);

  // Review queue and audit history.
  const queue = deps.reviewQueue(100);
  t.ok(queue.length >= 1, `the tiny model flags some images (${queue.length} in the queue)`);
  t.ok(queue.every((r) => r.needsReview && r.review === null && r.status === 'done'));
  t.same(
    deps.listResults({ limit: 50, needsReview: true }).map((r) => r.id),
    queue.map((r) => r.id),
    'the "needs review" filter is the queue',
  );
  const target = queue[0]!;
  const first = deps.addReview(target.id, { reviewer: 'Dr A', class: target.class!, note: 'agree' });
  t.equal(first.modelClass, target.class);
  t.equal(deps.reviewQueue(100).length, queue.length - 1, 'reviewed: out of the queue');
  const second = deps.addReview(target.id, {
    reviewer: 'Dr B',
    class: 'Benign',
    note: 'on second look: hematogones',
  });
  const detail = deps.getResult(target.id)!;
  t.same(
    detail.reviews.map((r) => [r.reviewer, r.class]),
    [
      ['Dr A', target.class],
      ['Dr B', 'Benign'],
    ],
    'both reviews kept, oldest first',
  );
  t.equal(detail.review?.id, second.id, 'the latest review is the current one');
  t.equal(detail.delivery.state, 'off', 'MQTT is off in this daemon');
  t.ok(detail.maskStats && typeof detail.maskStats.foregroundFraction === 'number', 'segmentation figures');
  t.equal(detail.width, 224);
  t.throws(() => deps.addReview(broken.id, { reviewer: 'x', class: 'Benign', note: '' }), ReviewError);
  t.throws(() => deps.addReview(999_999, { reviewer: 'x', class: 'Benign', note: '' }), ReviewError);
  t.throws(() => deps.addReview(pro.id, { reviewer: 'x', class: 'Nope', note: '' }), ReviewError);
  const exported = await deps.exportReviews();
  t.equal(exported.length, 1, 'one row per reviewed image');
  t.match(exported[0], {
    resultId: target.id,
    reviewedClass: 'Benign',
    reviewer: 'Dr B',
    reviewCount: 2,
    sha256: target.sha256,
  });
  t.ok(exported[0]!.imagePath && existsSync(exported[0]!.imagePath), 'the export points at the image');
  // Every review names the exact model (full version with its weights hash) and threshold it signed.
  const model = h.app!.context.classifier.info;
  t.match(model.version, /\+[0-9a-f]{8}$/);
  t.match(exported[0], { modelVersion: model.version, threshold: model.threshold });
  t.same(
    detail.reviews.map((r) => [r.modelVersion, r.threshold]),
    [
      [model.version, model.threshold],
      [model.version, model.threshold],
    ],
  );
  t.match(detail, { model: { name: model.name, version: model.version }, threshold: model.threshold });
  const csv = reviewsToCsv(exported).split('\r\n');
  t.match(csv[0], /,model_version,threshold$/);
  t.match(csv[1], new RegExp(`,"${model.version.replace(/[.+]/g, '\\$&')}","${model.threshold}"$`));

  // Status and per-day counts.
  const status = deps.status();
  t.equal(status.processed, 4);
  t.equal(status.failed, 1);
  t.equal(status.model?.name, 'tiny-test-model');
  t.match(status.provider, /^cpu/);
  t.equal(status.broker.enabled, false);
  t.ok(status.throughputPerMin > 0);
  t.ok(Array.isArray(status.problems));
  const days = deps.dailyCounts(3);
  t.equal(days.length, 3);
  const today = days[2]!;
  t.equal(today.day, new Date().toISOString().slice(0, 10));
  t.equal(
    Object.values(today.counts).reduce((a, b) => a + b, 0),
    4,
    'classified images counted by class today',
  );
  t.equal(today.failed, 1);
});
