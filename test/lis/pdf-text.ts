import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';

/** pdf.js reads the 14 standard PDF fonts (Helvetica, ...) from its own package folder. */
const standardFontDataUrl = join(
  dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json')),
  'standard_fonts/',
);

/** The text of every page of a PDF, read back by pdf.js (Mozilla's PDF reader). */
export async function pdfText(
  pdf: Buffer | Uint8Array,
): Promise<{ pages: number; text: string; title: string | null }> {
  const doc = await getDocument({ data: new Uint8Array(pdf), standardFontDataUrl, isEvalSupported: false })
    .promise;
  const parts: string[] = [];
  for (let i = 1; i <= doc.numPages; i++) {
    const page = await doc.getPage(i);
    const content = await page.getTextContent();
    parts.push(content.items.map((item) => ('str' in item ? item.str : '')).join(' '));
  }
  const meta = await doc.getMetadata();
  const info = meta.info as { Title?: string };
  const pages = doc.numPages;
  await doc.destroy();
  return { pages, text: parts.join('\n').replace(/\s+/g, ' '), title: info.Title ?? null };
}
