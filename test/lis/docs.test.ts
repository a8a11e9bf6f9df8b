import { readFileSync } from 'node:fs';
import t from 'tap';
import { renderSamples, sampleOruR01 } from './samples.js';

const doc = readFileSync(new URL('../../docs/lis.md', import.meta.url), 'utf8');

t.test('the samples in docs/lis.md are what the code sends', async (t) => {
  t.ok(doc.includes(sampleOruR01()), 'the ORU^R01 sample is current');
  t.equal(
    renderSamples(doc),
    doc,
    'every sample is current (node --import tsx scripts/lis-samples.ts rewrites them)',
  );
});
