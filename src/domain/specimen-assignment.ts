/**
 * Which specimen a captured image belongs to, from its path alone (config `specimen.assign`).
 * Open sessions are the store's business (they depend on state); this is the pure part.
 */
import type { AssignmentHint } from './specimen-change.js';

export type AssignMode = 'folder' | 'pattern' | 'session';

export interface AssignmentConfig {
  assign: AssignMode;
  /** A regex with a named group `accession`, matched against the file name (assign: pattern). */
  pattern: string | null;
}

/**
 * An accession number as blastwatch accepts it: it names a capture sub-folder and appears in
 * MQTT payloads and LIS messages, so letters, digits, dot, dash and underscore only, 1 to 64
 * characters, starting with a letter or digit.
 */
export const ACCESSION_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function validAccession(value: string): boolean {
  return ACCESSION_RE.test(value);
}

/** Throws with a sentence for people when `pattern` is no usable accession pattern. */
export function compileAccessionPattern(pattern: string): RegExp {
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch (err) {
    throw new Error(`not a valid regular expression: ${(err as Error).message}`);
  }
  if (!/\(\?<accession>/.test(pattern))
    throw new Error('needs a named group (?<accession>...) that captures the accession number');
  return re;
}

/**
 * The accession a captured file's path names. `relPath` is relative to the capture folder with
 * `/` separators. folder: its first folder (`A123/field-1.jpg` → A123; a file directly in the
 * capture folder names none); pattern: the `accession` group of the pattern on the file name;
 * session: none (the open session decides). A name that is no valid accession counts as none.
 */
export function accessionFromPath(
  relPath: string,
  config: AssignmentConfig,
  pattern?: RegExp,
): string | null {
  const parts = relPath.split('/').filter(Boolean);
  let candidate: string | undefined;
  if (config.assign === 'folder') {
    if (parts.length < 2) return null;
    candidate = parts[0];
  } else if (config.assign === 'pattern' && config.pattern !== null) {
    const re = pattern ?? compileAccessionPattern(config.pattern);
    candidate = re.exec(parts[parts.length - 1] ?? '')?.groups?.accession;
  }
  return candidate !== undefined && validAccession(candidate) ? candidate : null;
}

/** A pipeline work item's hint: uploads carry an explicit accession, captures their path. */
export function assignmentHint(
  item: { relPath: string; origin?: 'capture' | 'upload'; accession?: string },
  config: AssignmentConfig,
  pattern?: RegExp,
): AssignmentHint {
  if (item.origin === 'upload')
    return { accession: item.accession ?? null, source: 'upload', explicit: item.accession !== undefined };
  const source = config.assign === 'pattern' ? 'pattern' : 'folder';
  return { accession: accessionFromPath(item.relPath, config, pattern), source, explicit: false };
}
