/**
 * The sample ORU^R01 and FHIR Bundle shown in docs/lis.md, built by the real builders from the
 * test fixture's signed specimen (fixed inputs, fixed times), whose images arrived under two camera
 * warnings, so the doc shows how those are sent. scripts/lis-samples.ts writes them
 * into the doc; test/lis/docs.test.ts fails when the doc no longer matches what the code sends.
 */
import { buildFhirBundle } from '../../src/lis/fhir.js';
import { buildOruR01 } from '../../src/lis/hl7.js';
import { CAMERA_WARNINGS, lisConfig, makeReport } from './fixtures.js';

const config = lisConfig();

/** The PDF inside the Bundle is long and binary: the doc shows where it goes, not its bytes. */
export const PDF_PLACEHOLDER = 'JVBERi0xLjMK... (the PDF report, base64)';

const sampleReport = () => makeReport({ cameraWarnings: CAMERA_WARNINGS });

/** One segment per line (on the wire and in files they end with CR). */
export function sampleOruR01(): string {
  return buildOruR01(sampleReport(), {
    labName: config.lab_name,
    receivingApplication: config.receiving_application,
    receivingFacility: config.receiving_facility,
  })
    .split('\r')
    .join('\n');
}

export function sampleBundle(): string {
  const bundle = buildFhirBundle(sampleReport(), Buffer.from('%PDF'), {
    accessionSystem: config.accession_system,
  });
  for (const entry of bundle.entry ?? []) {
    const resource = entry.resource;
    if (resource?.resourceType === 'DiagnosticReport')
      for (const form of resource.presentedForm ?? []) form.data = PDF_PLACEHOLDER;
  }
  return JSON.stringify(bundle, null, 2);
}

/** The doc's generated blocks: between `<!-- sample:NAME -->` and `<!-- /sample:NAME -->`. */
export const SAMPLES: Record<string, () => { lang: string; text: string }> = {
  'oru-r01': () => ({ lang: 'text', text: sampleOruR01() }),
  'fhir-bundle': () => ({ lang: 'json', text: sampleBundle() }),
};

export function renderSamples(doc: string): string {
  let out = doc;
  for (const [name, make] of Object.entries(SAMPLES)) {
    const open = `<!-- sample:${name} -->`;
    const close = `<!-- /sample:${name} -->`;
    const start = out.indexOf(open);
    const end = out.indexOf(close);
    if (start < 0 || end < start) throw new Error(`docs/lis.md has no ${open} … ${close} block`);
    const { lang, text } = make();
    out = `${out.slice(0, start + open.length)}\n\n\`\`\`${lang}\n${text}\n\`\`\`\n\n${out.slice(end)}`;
  }
  return out;
}
