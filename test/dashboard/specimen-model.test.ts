// The specimen page's model of an image, fed the JSON the daemon serves (src/serve/views.ts): an
// out-of-domain image is explained in the daemon's own words, whatever reason the gate gives.
import t from 'tap';
import { DOMAIN_REASON_TEXT, type DomainReason } from '../../src/domain/applicability.js';
import { resultJson } from '../../src/serve/views.js';
import type { Result } from '../../src/domain/result.js';
// @ts-expect-error: a browser module without types
import { cannotScreenReason, imageFrom } from '../../src/serve/dashboard/public/specimen-model.js';

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
