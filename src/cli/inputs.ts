/**
 * The image arguments of `blastwatch classify` and `blastwatch evaluate --files`: a file, a
 * folder (every image under it, recursively) or `-` (newline-separated paths on stdin). A day's
 * captures can be given as their folder or piped from `find`, instead of a command line that
 * grows with every image.
 */
import { readdir, stat } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';

/** Where `-` reads from; a parameter so tests need no real stdin. */
export type TextSource = () => Promise<string>;

export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

export const readStdin: TextSource = () => readAll(process.stdin);

/** Non-empty lines, trimmed; `#` starts a comment line (as in evaluate's text lists). */
export function pathLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * Every file under `dir` whose extension is one of `extensions` (case-insensitive), sorted by
 * path; dotfiles and dot-folders are skipped like the daemon skips them. Symbolic links to files
 * are followed (a folder of links is a common way to assemble a set); links to folders are not,
 * so a link cycle cannot make the walk endless.
 */
export async function listImagesUnder(dir: string, extensions: readonly string[]): Promise<string[]> {
  const exts = new Set(extensions.map((e) => e.toLowerCase()));
  const out: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    const entries = await readdir(folder, { withFileTypes: true });
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (entry.name.startsWith('.')) continue;
      const path = join(folder, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (exts.has(extname(entry.name).toLowerCase())) {
        if (entry.isFile() || (entry.isSymbolicLink() && (await isFile(path)))) out.push(path);
      }
    }
  };
  await walk(dir);
  return out;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Expands the arguments in order: `-` → the paths read from stdin (once), a folder → its images,
 * anything else → itself (a missing or unreadable file is reported per image by the caller).
 * Throws an Error with a one-line message for `-` given twice.
 */
export async function expandImageInputs(
  args: readonly string[],
  extensions: readonly string[],
  stdin: TextSource = readStdin,
): Promise<string[]> {
  if (args.filter((a) => a === '-').length > 1) throw new Error("'-' (stdin) can be given only once");
  const out: string[] = [];
  for (const arg of args) {
    // A loop, not push(...list): spreading a list of many thousand paths overflows the stack.
    const expanded =
      arg === '-'
        ? pathLines(await stdin())
        : (await isDirectory(arg))
          ? await listImagesUnder(arg, extensions)
          : [arg];
    for (const path of expanded) out.push(path);
  }
  return out;
}

/**
 * `evaluate --files` given as a folder or `-`: the images as paths relative to the data folder
 * (the form training/split.json uses), or undefined when `spec` is a list file for
 * readFileList. Stdin lines are relative to the data folder like a list file's, or absolute;
 * a folder is resolved like any path argument. Every image must lie inside the data folder,
 * because its first folder there is its truth label.
 */
export async function evaluationInputs(
  spec: string,
  dataDir: string,
  extensions: readonly string[],
  stdin: TextSource = readStdin,
): Promise<Array<{ relPath: string }> | undefined> {
  let absolute: string[];
  if (spec === '-') absolute = pathLines(await stdin()).map((p) => resolve(dataDir, p));
  else if (await isDirectory(spec)) absolute = await listImagesUnder(resolve(spec), extensions);
  else return undefined;
  return absolute.map((abs) => {
    const rel = relative(dataDir, abs);
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel))
      throw new Error(`${abs} is not inside the data folder ${dataDir}`);
    return { relPath: rel.split(sep).join('/') };
  });
}
