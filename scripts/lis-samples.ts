// Rewrites the sample ORU^R01 and FHIR Bundle in docs/lis.md from the code that sends them:
//   node --import tsx scripts/lis-samples.ts
// test/lis/docs.test.ts checks that the doc matches.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderSamples } from '../test/lis/samples.js';

const doc = fileURLToPath(new URL('../docs/lis.md', import.meta.url));
const before = readFileSync(doc, 'utf8');
const after = renderSamples(before);
if (after !== before) writeFileSync(doc, after);
console.log(after === before ? 'docs/lis.md: samples up to date' : 'docs/lis.md: samples rewritten');
