// A specimen captured while the station warned about its camera, in a real headless Chromium
// against the real daemon with the bundled model: the specimen keeps the warning its images
// arrived under, its page and the sign-off confirmation say so, and the signature's audit entry
// records it, and the HL7 message the laboratory system gets carries it coded.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Message } from 'node-hl7-client';
import t from 'tap';
import { parseCameraShift } from '../../scripts/camera-shifts.js';
import { repoRoot, sampleImages, until } from '../daemon/helpers.js';
import { launchBrowser, pageWithErrors, startSessionInPage } from './browser.js';
import { startDaemonHarness } from './harness.js';

interface SpecimenDetail {
  id: number;
  accession: string;
  camera_warnings: { watch: string; text: string; images: number; first_at: string; last_at: string }[];
  audit: { action: string; details: Record<string, unknown> }[];
}

t.test('a specimen keeps the camera warning its images arrived under, and says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-camera-warned-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lisDrop = join(dir, 'lis-inbox');
  mkdirSync(lisDrop);
  const harness = await startDaemonHarness({
    modelDir: join(repoRoot, 'models'),
    driftWindow: 6,
    lisFileDir: lisDrop,
  });
  t.teardown(() => harness.close());
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const { page, errors } = await pageWithErrors(browser);
  const samples = sampleImages().slice(0, 10);
  const specimenOf = async (accession: string): Promise<SpecimenDetail> => {
    const list = (await (await fetch(`${harness.url}/api/specimens`)).json()) as {
      id: number;
      accession: string;
    }[];
    const id = list.find((s) => s.accession === accession)?.id;
    if (id === undefined) throw new Error(`no specimen ${accession}`);
    return (await (await fetch(`${harness.url}/api/specimens/${id}`)).json()) as SpecimenDetail;
  };

  // A specimen captured with the camera as trained: no warning is kept.
  await startSessionInPage(page, harness.url, 'H26-00900', 'Dr Lamp');
  for (const [i, path] of samples.slice(0, 3).entries()) await harness.drop(path, `clean-${i}.jpg`);
  const clean = await specimenOf('H26-00900');
  t.same(clean.camera_warnings, [], 'the camera as trained: nothing kept');
  await page.goto(`${harness.url}/#/specimen/${clean.id}`);
  await page.waitForSelector('body[data-ready="specimen"]');
  t.equal(await page.locator('#camera-warnings').count(), 0, 'and its page warns of nothing');
  // One session at a time: this one ends as a person ends it, from the list.
  await page.goto(`${harness.url}/#/`);
  await page.waitForSelector('body[data-ready="specimens"]');
  await page.locator('#specimen-list tr', { hasText: 'H26-00900' }).locator('button.finish').click();
  await page.locator('#specimen-list tr', { hasText: 'Awaiting sign-off' }).waitFor();
  // More captures as trained, in no specimen, so that H26-00900's fall out of the window the
  // watches judge before the camera changes (re-encoded: the same bytes would be one result).
  const sameCamera = parseCameraShift('jpeg:95');
  for (const [i, path] of samples.slice(3, 9).entries()) {
    const file = join(dir, `clean-more-${i}.jpg`);
    writeFileSync(file, (await sameCamera.apply(readFileSync(path), path)).bytes);
    await harness.drop(file, `clean-more-${i}.jpg`);
  }

  // The next specimen, with the camera recording green brighter: once the latest captures say so,
  // every image that joins it is counted under the warning, and so are those of the window the
  // warning was first judged on.
  await startSessionInPage(page, harness.url, 'H26-00901', 'Dr Lamp');
  const green = parseCameraShift('gains:1,1.15,1');
  for (const [i, path] of samples.entries()) {
    const file = join(dir, `green-${i}.png`);
    writeFileSync(file, (await green.apply(readFileSync(path), path)).bytes);
    await harness.drop(file, `green-${i}.png`);
  }
  const warned = await specimenOf('H26-00901');
  // A green this bright also makes most fields refused, so the drift of refusals may warn too.
  const watches = warned.camera_warnings.map((w) => w.watch);
  t.ok(watches.includes('colour_drift'), `the white balance warned (${watches.join(', ')})`);
  t.ok(
    watches.every((w) => w === 'colour_drift' || w === 'domain_drift'),
    'and nothing but what a brighter green raises',
  );
  const warning = warned.camera_warnings.find((w) => w.watch === 'colour_drift');
  t.match(warning?.text, /^white balance changed\? The camera records green brighter/);
  t.equal(
    warning?.images,
    samples.length,
    'every green image counted, also those that arrived before the warning was raised',
  );
  t.ok(warning && warning.first_at <= warning.last_at, 'first and last time in order');
  t.same(
    (await specimenOf('H26-00900')).camera_warnings,
    [],
    'the earlier specimen, out of the window, keeps none',
  );

  // The list names it too, beside the status, and says which watches in its tooltip.
  const listed = (await (await fetch(`${harness.url}/api/specimens`)).json()) as {
    accession: string;
    camera_warned: string[];
  }[];
  t.same(
    listed.find((x) => x.accession === 'H26-00901')?.camera_warned,
    watches,
    'the list carries the watches',
  );
  t.same(
    listed.find((x) => x.accession === 'H26-00900')?.camera_warned,
    [],
    'and none for the clean specimen',
  );
  await page.goto(`${harness.url}/#/`);
  await page.waitForSelector('body[data-ready="specimens"]');
  const badge = page.locator('#specimen-list tr', { hasText: 'H26-00901' }).locator('.badge.camera-warned');
  t.equal(await badge.textContent(), 'Camera warned');
  t.match(
    await badge.getAttribute('title'),
    /may have changed while its images arrived \(.*white balance.*\)/,
  );
  t.equal(
    await page.locator('#specimen-list tr', { hasText: 'H26-00900' }).locator('.badge.camera-warned').count(),
    0,
  );

  await page.goto(`${harness.url}/#/specimen/${warned.id}`);
  await page.waitForSelector('body[data-ready="specimen"]');
  const notice = page.locator('#camera-warnings');
  await notice.waitFor();
  t.match(
    await notice.textContent(),
    /The station warned that its camera may have changed while this specimen's images arrived \(a warning is judged on the latest captures, so those just before it was raised count too\)\..*\d+ images?, .*white balance changed\?/,
  );
  await page.fill('#signer-name', 'Dr Lamp');
  await page.click('#sign-button');
  await page.waitForSelector('#sign-confirm[open]');
  t.match(
    await page.textContent('#sign-confirm-text'),
    new RegExp(
      `^The station warned about its camera while this specimen's images arrived: .*white balance \\(${warning?.images} images?\\)`,
    ),
    'the confirmation repeats it before the verdict',
  );
  await page.click('#sign-confirm-yes');
  // The panel redrawn as signed: the signature was stored and the page read it back.
  await page.waitForSelector(`#signoff-panel[data-key="${warned.id}:signed:1"]`);
  const signed = (await specimenOf('H26-00901')).audit.find((a) => a.action === 'signed');
  t.same(signed?.details.camera_warnings, watches, 'the signature records what the signer was told');
  t.ok(await notice.isVisible(), 'a signed specimen still shows it');
  t.equal(
    await page.locator('#camera-warnings-after-signing').count(),
    0,
    'counted before the signature: the signer was told',
  );

  // The laboratory system gets the warnings coded, one row per watch with the images under it.
  const hl7Files = () => readdirSync(lisDrop).filter((n) => n.endsWith('.hl7'));
  await until(() => hl7Files().length > 0, 20_000, 'the HL7 file');
  t.equal(hl7Files().length, 1, 'one signature, one message');
  const msg = new Message({ text: readFileSync(join(lisDrop, hl7Files()[0]!), 'utf8') });
  const rows: string[][] = [];
  msg.get('OBX').forEach((obx) => {
    const code = obx.get('OBX.3.1').toString();
    if (code.startsWith('CAMERA-'))
      rows.push([code, obx.get('OBX.4').toString(), obx.get('OBX.5.1').toString()]);
  });
  t.same(
    rows,
    warned.camera_warnings.flatMap((w, i) => [
      ['CAMERA-WARNING', String(i + 1), w.watch],
      ['CAMERA-WARNED-IMAGES', String(i + 1), String(w.images)],
    ]),
    'the HL7 message codes each watch with its images',
  );
  const notes: string[] = [];
  msg.get('NTE').forEach((nte) => notes.push(nte.get('NTE.3').toString()));
  t.ok(
    notes.some(
      (n) =>
        n.startsWith("Camera warnings while this specimen's images arrived") &&
        n.includes(warning?.text ?? '?'),
    ),
    'and says them in words',
  );
  t.same(errors, [], 'no script errors');
});

t.test('a warning that counts a signed specimen says the signed report does not mention it', async (t) => {
  const harness = await startDaemonHarness();
  t.teardown(() => harness.close());
  const browser = await launchBrowser();
  t.teardown(() => browser.close());
  const { page, errors } = await pageWithErrors(browser);
  const store = harness.app!.store;
  await startSessionInPage(page, harness.url, 'H26-00950', 'Dr Lamp');
  for (const [i, path] of sampleImages().slice(0, 2).entries()) await harness.drop(path, `f-${i}.jpg`);
  const id = store.specimens.byAccession('H26-00950')!.id;
  store.specimens.finish(id, 'Dr Lamp');
  store.signOffs.sign(id, { verdict: 'insufficient', comment: null }, 'Dr Lamp');

  // The next capture raises the white-balance warning, judged on a window its images are in
  // (the raise is the store's own; what makes health raise it is the first test's business).
  await harness.drop(sampleImages()[2]!, 'later.jpg');
  const later = store.results.list({ limit: 1 })[0]!.id;
  const counted = store.cameraWarnings.raised(
    [{ watch: 'colour_drift', text: 'white balance changed? median 1.043', window: 3 }],
    later,
    Date.now() + 1000,
  );
  t.same(counted, [id], 'the signed specimen is counted');
  await page.goto(`${harness.url}/#/specimen/${id}`);
  await page.waitForSelector('body[data-ready="specimen"]');
  await page.locator('#camera-warnings').waitFor();
  t.match(
    await page.textContent('#camera-warnings-after-signing'),
    /^A warning raised after the latest signature counted some of these images: the signed report and the laboratory system do not mention it\./,
  );
  t.same(errors, [], 'no script errors');
});
