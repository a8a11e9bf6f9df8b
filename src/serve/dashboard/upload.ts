import { createHash, randomBytes } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import type { WorkItem } from '../../domain/work-item.js';
import type { Store } from '../../store/index.js';

export interface UploadDeps {
  dataDir: string;
  store: Store;
  /** The pipeline's intake; anything but 'queued' means it cannot take the image now. */
  offer: (item: WorkItem) => string;
}

export interface UploadResult {
  resultId: number | null;
  sha256: string;
  duplicate: boolean;
  error?: string;
}

/**
 * An image uploaded from the dashboard: written under data.dir/uploads (never into the capture
 * folder) and offered to the same pipeline as captured files. Resolves when it is stored (the
 * work item's `settle`); bytes already classified resolve at once with the existing result (and
 * stay in the specimen they first joined: the same bytes count once). With `accession` the image
 * joins that specimen in its result's transaction.
 */
export async function ingestUpload(
  deps: UploadDeps,
  fileName: string,
  bytes: Buffer,
  accession?: string,
): Promise<UploadResult> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const known = deps.store.results.doneIdBySha(sha256);
  if (known !== undefined) return { resultId: known, sha256, duplicate: true };
  const dir = join(deps.dataDir, 'uploads', new Date().toISOString().slice(0, 10));
  await mkdir(dir, { recursive: true });
  // The stored name is ours (hash + a safe extension); the user's name is only a label.
  const ext = (extname(fileName)
    .toLowerCase()
    .match(/^\.[a-z0-9]{1,5}$/) ?? ['.img'])[0];
  const path = join(dir, `${sha256.slice(0, 16)}-${randomBytes(3).toString('hex')}${ext}`);
  await writeFile(path, bytes, { flag: 'wx' });
  const st = await stat(path);
  // eslint-disable-next-line no-control-regex -- control characters are what we strip
  const label = `upload/${basename(fileName).replace(/[\0-\x1f]/g, '_') || 'image'}`;
  return new Promise((resolve) => {
    const outcome = deps.offer({
      path,
      relPath: label,
      size: st.size,
      mtimeMs: st.mtimeMs,
      ino: st.ino,
      ctimeMs: st.ctimeMs,
      origin: 'upload',
      ...(accession !== undefined ? { accession } : {}),
      settle: (o) => resolve({ ...o, sha256 }),
    });
    if (outcome !== 'queued')
      resolve({ resultId: null, sha256, duplicate: false, error: `not accepted: ${outcome}` });
  });
}
