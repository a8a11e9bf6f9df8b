import t from 'tap';
import { Message } from 'node-hl7-client';
import { buildOruR01, escapeHl7 } from '../../src/lis/hl7.js';
import { messageControlId } from '../../src/lis/ids.js';
import { CAMERA_WARNINGS, makeReport } from './fixtures.js';

const opts = {
  labName: 'City Hospital Haematology',
  receivingApplication: 'LIS',
  receivingFacility: 'CITYHOSP',
};

/** Every OBX as {code, subId, value, units, status}, read by the HL7 library. */
function observations(msg: Message) {
  const out: {
    code: string;
    text: string;
    type: string;
    subId: string;
    value: string;
    units: string;
    status: string;
    observer: string;
  }[] = [];
  msg.get('OBX').forEach((obx) => {
    out.push({
      type: obx.get('OBX.2').toString(),
      code: obx.get('OBX.3.1').toString(),
      text: obx.get('OBX.3.2').toString(),
      subId: obx.get('OBX.4').toString(),
      value: obx.get('OBX.5.1').toString(),
      units: obx.get('OBX.6.1').toString(),
      status: obx.get('OBX.11').toString(),
      observer: obx.get('OBX.16').toString(),
    });
  });
  return out;
}

t.test('a signed specimen becomes an ORU^R01 v2.5.1 the HL7 library reads back', async (t) => {
  const report = makeReport();
  const text = buildOruR01(report, opts);
  const msg = new Message({ text });
  t.equal(msg.get('MSH.3.1').toString(), 'blastwatch');
  t.equal(msg.get('MSH.3.2').toString(), 'scope-1', 'the device is named in the sending application');
  t.equal(msg.get('MSH.4').toString(), 'City Hospital Haematology');
  t.equal(msg.get('MSH.5').toString(), 'LIS');
  t.equal(msg.get('MSH.6').toString(), 'CITYHOSP');
  t.equal(msg.get('MSH.7').toString(), '20261203093000+0000');
  t.equal(msg.get('MSH.9.1').toString(), 'ORU');
  t.equal(msg.get('MSH.9.2').toString(), 'R01');
  t.equal(msg.get('MSH.10').toString(), messageControlId(report));
  t.ok(messageControlId(report).length <= 20, 'MSH-10 fits its 20 characters');
  t.equal(msg.get('MSH.11').toString(), 'P');
  t.equal(msg.get('MSH.12').toString(), '2.5.1');
  t.equal(msg.totalSegment('PID'), 0, 'no patient segment: nothing about the patient is known');
  t.equal(msg.totalSegment('PV1'), 0);
  t.equal(msg.get('ORC.1').toString(), 'RE');
  t.equal(msg.get('ORC.2').toString(), 'H26-0042', 'placer order = accession');
  t.equal(msg.get('ORC.3').toString(), 'H26-0042', 'filler order = accession');
  t.equal(msg.get('OBR.2').toString(), 'H26-0042');
  t.equal(msg.get('OBR.3').toString(), 'H26-0042');
  t.equal(msg.get('OBR.4.3').toString(), '99BLW', 'the test is coded in a local system');
  t.equal(msg.get('OBR.7').toString(), '20261203090000+0000');
  t.equal(msg.get('OBR.24').toString(), 'HM');
  t.equal(msg.get('OBR.25').toString(), 'F', 'final');
  t.equal(msg.get('OBR.32.1.1').toString(), 'dr-lee');
  t.match(msg.get('NTE.3').toString(), /^Screening aid, not a diagnosis/);
  const notes: string[] = [];
  msg.get('NTE').forEach((nte) => notes.push(nte.get('NTE.3').toString()));
  t.equal(notes.length, 3, 'disclaimer, model limits, readings');
  t.equal(notes[2], '1 image out of the model domain read by a person: Pre-B 1.');

  const obx = observations(msg);
  const by = (code: string) => obx.filter((o) => o.code === code);
  t.equal(by('VERDICT')[0]?.value, 'suspicious');
  t.equal(by('VERDICT')[0]?.type, 'CWE');
  t.equal(by('VERDICT')[0]?.observer, 'dr-lee');
  t.equal(by('SUGGESTED-VERDICT')[0]?.value, 'suspicious');
  t.equal(by('IMAGES-SCREENED')[0]?.value, '12');
  t.equal(by('IMAGES-OUT-OF-DOMAIN')[0]?.value, '1');
  t.equal(by('IMAGES-FAILED')[0]?.value, '1');
  t.equal(by('IMAGES-FLAGGED')[0]?.value, '9');
  t.equal(by('FLAGGED-SHARE')[0]?.value, '75');
  t.equal(by('FLAGGED-SHARE')[0]?.units, '%');
  t.same(
    by('CLASS-COUNT').map((o) => [o.subId, o.text, o.value]),
    [
      ['1', 'Screened images classified Benign', '3'],
      ['2', 'Screened images classified Early Pre-B', '4'],
      ['3', 'Screened images classified Pre-B', '2'],
      ['4', 'Screened images classified Pro-B', '3'],
    ],
  );
  t.equal(by('IMAGES-READ-NOT-SCREENED')[0]?.value, '1', 'the out-of-domain field a person read');
  t.same(
    by('READ-CLASS-COUNT').map((o) => [o.subId, o.text, o.value, o.units]),
    [['1', 'Images out of the model domain read as Pre-B', '1', '{images}']],
  );
  t.equal(by('WITHHELD-UNREAD')[0]?.value, '0');
  t.equal(by('MODEL')[0]?.value, 'blastwatch-mobilenet_v2-early-fusion 2026.11.27+58f4004b');
  t.equal(by('SIGNED-BY')[0]?.value, 'dr-lee');
  t.equal(by('COMMENT')[0]?.value, 'Blasts in 9 of 12 fields; refer for flow cytometry.');
  t.equal(by('AMENDMENT-REASON').length, 0);
  t.ok(
    obx.every((o) => o.status === 'F'),
    'every observation final',
  );
  const systems = new Set<string>();
  msg.get('OBX').forEach((o) => systems.add(o.get('OBX.3.3').toString()));
  t.same([...systems], ['99BLW'], 'every observation coded in the local system: no LOINC code is claimed');
  t.equal(buildOruR01(report, opts), text, 'the same signature builds the same message');
});

t.test('an amendment is a new message with result status C and its reason', async (t) => {
  const first = makeReport();
  const amended = makeReport({
    version: 2,
    verdict: 'no_suspicious_cells',
    reason: 'Smudge cells, not blasts',
  });
  const msg = new Message({ text: buildOruR01(amended, opts) });
  t.not(messageControlId(amended), messageControlId(first), 'its own control id');
  t.equal(msg.get('OBR.25').toString(), 'C');
  const obx = observations(msg);
  t.ok(obx.every((o) => o.status === 'C'));
  t.equal(obx.find((o) => o.code === 'VERDICT')?.value, 'no_suspicious_cells');
  t.equal(obx.find((o) => o.code === 'AMENDMENT-REASON')?.value, 'Smudge cells, not blasts');
});

t.test('readings of fields the model could not screen: per class read, and what nobody read', async (t) => {
  const report = makeReport({
    verdict: 'no_suspicious_cells',
    readings: { byClass: { Benign: 2, 'Pro-B': 1 }, unreadWithheld: 3 },
  });
  const obx = observations(new Message({ text: buildOruR01(report, opts) }));
  const by = (code: string) => obx.filter((o) => o.code === code);
  t.equal(by('IMAGES-READ-NOT-SCREENED')[0]?.value, '3', 'the total over the classes read');
  t.same(
    by('READ-CLASS-COUNT').map((o) => [o.subId, o.value, o.text]),
    [
      ['1', '2', 'Images out of the model domain read as Benign'],
      ['2', '1', 'Images out of the model domain read as Pro-B'],
    ],
  );
  t.equal(by('WITHHELD-UNREAD')[0]?.value, '3', 'withheld benign calls nobody read are sent, not dropped');

  const none = observations(
    new Message({ text: buildOruR01(makeReport({ readings: { byClass: {}, unreadWithheld: 0 } }), opts) }),
  );
  t.equal(none.find((o) => o.code === 'IMAGES-READ-NOT-SCREENED')?.value, '0', 'zero is sent as zero');
  t.equal(none.filter((o) => o.code === 'READ-CLASS-COUNT').length, 0, 'no class row without a reading');
  const noneMsg = new Message({
    text: buildOruR01(makeReport({ readings: { byClass: {}, unreadWithheld: 0 } }), opts),
  });
  t.equal(noneMsg.totalSegment('NTE'), 2, 'nothing read and nothing waiting: no readings note');
});

t.test(
  'camera warnings its images arrived under: coded per watch with its images, and in words',
  async (t) => {
    const msg = new Message({ text: buildOruR01(makeReport({ cameraWarnings: CAMERA_WARNINGS }), opts) });
    const obx = observations(msg);
    const by = (code: string) => obx.filter((o) => o.code === code);
    t.same(
      by('CAMERA-WARNING').map((o) => [o.type, o.subId, o.value]),
      [
        ['CWE', '1', 'colour_drift'],
        ['CWE', '2', 'domain_drift'],
      ],
      'one coded row per watch',
    );
    const watchText: string[] = [];
    msg.get('OBX').forEach((o) => {
      if (o.get('OBX.3.1').toString() === 'CAMERA-WARNING') {
        t.equal(o.get('OBX.5.3').toString(), '99BLW', 'the watch in the local coding system');
        watchText.push(o.get('OBX.5.2').toString());
      }
    });
    t.match(watchText[0], /^White balance changed/);
    t.same(
      by('CAMERA-WARNED-IMAGES').map((o) => [o.subId, o.value, o.units]),
      [
        ['1', '7', '{images}'],
        ['2', '2', '{images}'],
      ],
      'each with the images that arrived under it, on the same sub-id',
    );
    const notes: string[] = [];
    msg.get('NTE').forEach((nte) => notes.push(nte.get('NTE.3').toString()));
    t.equal(notes.length, 4, 'disclaimer, model limits, readings, camera warnings');
    t.match(notes[3], /^Camera warnings while this specimen's images arrived/);
    t.match(
      notes[3],
      /7 images: white balance changed\? .*; 2 images: camera, stain or magnification changed\?/,
    );
    t.match(notes[3], /gate.drift_share 30 %\)\.$/);

    const none = observations(new Message({ text: buildOruR01(makeReport(), opts) }));
    t.equal(
      none.filter((o) => o.code.startsWith('CAMERA-')).length,
      0,
      'no camera row when no warning was raised',
    );
  },
);

t.test('delimiters and line breaks in values are escaped, and read back as written', async (t) => {
  const report = makeReport({
    accession: 'A|B^C&D~E\\F',
    comment: 'line one\r\nline two',
    signer: 'O^Brien',
  });
  const text = buildOruR01(report, { ...opts, labName: 'Lab | North' });
  const segments = text.split('\r');
  const parsed = new Message({ text });
  t.equal(
    segments.length,
    3 + parsed.totalSegment('NTE') + parsed.totalSegment('OBX'),
    'no value started a segment (MSH, ORC, OBR, the notes and the observations)',
  );
  const msg = new Message({ text });
  t.equal(msg.get('ORC.2').toString(), 'A|B^C&D~E\\F');
  t.equal(msg.get('OBR.3').toString(), 'A|B^C&D~E\\F');
  t.equal(msg.get('MSH.4').toString(), 'Lab | North');
  t.equal(msg.get('OBR.32.1.1').toString(), 'O^Brien');
  t.equal(observations(msg).find((o) => o.code === 'COMMENT')?.value, 'line one line two');
  t.equal(escapeHl7('a|b'), 'a\\F\\b');
});

t.test('the control id depends on the device and the specimen, not on a row id', async (t) => {
  const a = makeReport();
  t.equal(messageControlId(a), messageControlId(makeReport()), 'stable');
  t.not(messageControlId(a), messageControlId({ ...a, deviceId: 'scope-2' }), 'another device');
  t.not(
    messageControlId(a),
    messageControlId({ ...a, specimen: { ...a.specimen, createdAt: a.specimen.createdAt + 1 } }),
    'a fresh database reusing the specimen id',
  );
});
