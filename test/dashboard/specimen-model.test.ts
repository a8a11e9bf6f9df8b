// The specimen page's model of an image, fed the JSON the daemon serves (src/serve/views.ts): an
// out-of-domain image is explained in the daemon's own words, whatever reason the gate gives.
import t from 'tap';
import { DOMAIN_REASON_TEXT, type DomainReason } from '../../src/domain/applicability.js';
import { resultJson } from '../../src/serve/views.js';
import type { Result } from '../../src/domain/result.js';
// prettier-ignore
// @ts-expect-error: a browser module without types
import { cannotScreenReason, hasFieldsToRead, imageFrom, outOfDomainReadingsText, readAsBall, specimenFrom, toReadText } from '../../src/serve/dashboard/public/specimen-model.js';

t.test('every gate reason reaches the specimen page in words', async (t) => {
  const reasons = Object.keys(DOMAIN_REASON_TEXT) as DomainReason[];
  for (const reason of reasons) {
    const result = {
      id: 7,
      file: 'H1/field-1.jpg',
      status: 'out_of_domain',
      processedAt: 1_764_800_000_000,
      capturedAt: null,
      review: null,
      delivery: null,
      domain: { in: false, reasons: [reason], scores: {} },
    } as unknown as Result;
    const json = JSON.parse(JSON.stringify(resultJson(result))) as unknown;
    const text = (cannotScreenReason as (img: unknown) => string)(
      (imageFrom as (raw: unknown) => unknown)(json),
    );
    t.equal(text, `Out of domain: ${DOMAIN_REASON_TEXT[reason]}`, reason);
  }
});

t.test('readings of out-of-domain fields: in the model class order, screened reviews left out', async (t) => {
  const classes = [
    { name: 'Benign', label: 'Benign (hematogones)' },
    { name: 'Pre-B', label: 'Pre-B' },
    { name: 'Pro-B', label: 'Pro-B' },
  ];
  const img = (status: string, read: string | null) => ({
    status,
    review: read ? { class: read, reviewer: 'dr-lee' } : null,
  });
  const images = [
    img('out_of_domain', 'Pro-B'),
    img('out_of_domain', 'Benign'),
    img('out_of_domain', 'Pro-B'),
    img('out_of_domain', null),
    img('done', 'Pre-B'),
  ];
  const text = outOfDomainReadingsText as (images: unknown[], classes: unknown[]) => string;
  t.equal(text(images, classes), 'Benign (hematogones): 1 · Pro-B: 2');
  t.equal(text([img('done', 'Pre-B'), img('out_of_domain', null)], classes), '', 'nothing read');
  const ball = readAsBall as (image: unknown, benign: string) => boolean;
  t.same(
    images.map((i) => ball(i, 'Benign')),
    [true, false, true, false, false],
    'a B-ALL reading of a field the model could not screen; a screened image is not one',
  );
});

t.test("the list's badge: withheld fields to read, until the specimen is signed", async (t) => {
  const from = specimenFrom as (raw: unknown) => { unreadWithheld: number };
  const badge = toReadText as (s: unknown) => string;
  const toRead = hasFieldsToRead as (s: unknown) => boolean;
  const specimen = (status: string, unread?: number) =>
    from({ id: 1, accession: 'H1', status, ...(unread === undefined ? {} : { unread_withheld: unread }) });
  t.equal(specimen('open', 2).unreadWithheld, 2, 'read from the API field');
  t.equal(specimen('open').unreadWithheld, 0, 'none when the API gives none');
  t.equal(badge(specimen('open', 1)), '1 field to read');
  t.equal(badge(specimen('awaiting_signoff', 3)), '3 fields to read');
  t.equal(badge(specimen('open', 0)), '', 'nothing to read: no badge');
  t.equal(badge(specimen('signed', 2)), '', 'signed: the report said they went unread');
  t.equal(badge(specimen('amended', 2)), '');
  t.same(
    [specimen('open', 1), specimen('open', 0), specimen('signed', 1)].map(toRead),
    [true, false, false],
    'the "To read" filter takes what the badge shows',
  );
});
