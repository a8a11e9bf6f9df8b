import { readdir, readFile } from 'node:fs/promises';
import { extname, isAbsolute, join, normalize, sep } from 'node:path';

/** One labelled image of a class-per-folder set. */
export interface LabelledFile {
  /** Relative to the data folder, with forward slashes (as in training/split.json). */
  relPath: string;
  absPath: string;
  /** Class index (model.json order). */
  truth: number;
  /** Expected sha256 of the bytes, when the list carried one (split.json does). */
  sha256?: string;
}

export class DatasetError extends Error {
  override readonly name = 'DatasetError';
}

const toPosix = (p: string): string => p.split(sep).join('/');

/** Maps `<folder>/<file>` to its class via model.json `folders`. */
function labelOf(relPath: string, folders: readonly string[]): number {
  const folder = relPath.split('/')[0] ?? '';
  const idx = folders.indexOf(folder);
  if (idx < 0)
    throw new DatasetError(
      `${relPath}: first folder '${folder}' is not one of the model's folders (${folders.join(', ')})`,
    );
  return idx;
}

/**
 * Every image under `<dataDir>/<folder>/` for each of the model's folders, sorted by path.
 * A missing folder is an error: a silently missing class would inflate the accuracy.
 */
export async function listClassFolders(
  dataDir: string,
  folders: readonly string[],
  extensions: readonly string[],
): Promise<LabelledFile[]> {
  const exts = new Set(extensions.map((e) => e.toLowerCase()));
  const out: LabelledFile[] = [];
  for (const [truth, folder] of folders.entries()) {
    let names: string[];
    try {
      names = await readdir(join(dataDir, folder));
    } catch (err) {
      throw new DatasetError(
        `cannot read class folder ${join(dataDir, folder)}: ${(err as NodeJS.ErrnoException).code ?? String(err)} ` +
          `(expected one folder per class: ${folders.join(', ')})`,
      );
    }
    for (const name of names.sort()) {
      if (name.startsWith('.') || !exts.has(extname(name).toLowerCase())) continue;
      out.push({ relPath: `${folder}/${name}`, absPath: join(dataDir, folder, name), truth });
    }
  }
  return out;
}

function checkRelative(p: string, source: string): string {
  const norm = toPosix(normalize(p.trim()));
  if (isAbsolute(p) || norm === '..' || norm.startsWith('../'))
    throw new DatasetError(`${source}: '${p}' must be a path relative to the data folder`);
  return norm;
}

/**
 * A list of relative paths to restrict an evaluation to: a text file (one path per line, blank
 * lines and # comments ignored), a JSON array of paths or of {path, sha256?} objects, or
 * training/split.json with `subset` naming one of its splits.
 */
export async function readFileList(
  file: string,
  subset?: string,
): Promise<Array<{ relPath: string; sha256?: string }>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new DatasetError(
      `cannot read file list ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('[') && !trimmed.startsWith('{')) {
    if (subset !== undefined)
      throw new DatasetError(`${file}: --subset needs a split.json, this is a text list`);
    return text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => ({ relPath: checkRelative(l, file) }));
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DatasetError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  let entries: unknown;
  if (Array.isArray(doc)) {
    if (subset !== undefined)
      throw new DatasetError(`${file}: --subset needs a split.json, this is a plain list`);
    entries = doc;
  } else {
    const splits = (doc as { splits?: Record<string, unknown> }).splits;
    if (typeof splits !== 'object' || splits === null)
      throw new DatasetError(`${file}: expected a JSON list of paths or a split.json with "splits"`);
    if (subset === undefined)
      throw new DatasetError(`${file}: a split file needs --subset (${Object.keys(splits).join(', ')})`);
    entries = splits[subset];
    if (!Array.isArray(entries))
      throw new DatasetError(`${file}: no split '${subset}' (has ${Object.keys(splits).join(', ')})`);
  }
  return (entries as unknown[]).map((e, i) => {
    if (typeof e === 'string') return { relPath: checkRelative(e, file) };
    const o = e as { path?: unknown; sha256?: unknown };
    if (typeof o?.path !== 'string') throw new DatasetError(`${file}: entry ${i} has no "path"`);
    return {
      relPath: checkRelative(o.path, file),
      ...(typeof o.sha256 === 'string' ? { sha256: o.sha256 } : {}),
    };
  });
}

/** Resolves a list of relative paths against the data folder and labels them by folder. */
export function labelList(
  dataDir: string,
  list: ReadonlyArray<{ relPath: string; sha256?: string }>,
  folders: readonly string[],
): LabelledFile[] {
  return list.map(({ relPath, sha256 }) => ({
    relPath,
    absPath: join(dataDir, ...relPath.split('/')),
    truth: labelOf(relPath, folders),
    ...(sha256 ? { sha256 } : {}),
  }));
}
