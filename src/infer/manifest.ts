import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { z } from 'zod';
import { gateSectionSchema } from '../gate/section.js';
import { redCellReferenceSchema } from '../gate/red-cell-size.js';
import { ModelError } from './errors.js';
import { VIEW_COUNTS } from './views.js';
import { colourNormalisationSchema } from '../preprocess/colour.js';

/**
 * models/model.json, written by the training pipeline (training/). Only what inference relies on
 * is checked strictly; provenance sections (preprocessing but its `colour`, metrics, training)
 * are free-form.
 */
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 as 64 lower-case hex digits');
const probability = z.number().min(0).max(1);

const inputSchema = z.looseObject({
  // [batch, channels, height, width]; batch is dynamic (-1 or null).
  shape: z.tuple([
    z.union([z.literal(-1), z.null(), z.number().int().positive()]),
    z.literal(3),
    z.number().int().positive(),
    z.number().int().positive(),
  ]),
  layout: z.literal('NCHW'),
  scale: z.string().optional(),
});

const fileSchema = z.strictObject({
  path: z.string().min(1),
  sha256: sha256Hex,
  bytes: z.number().int().positive(),
});

/** Hex digits of the INT8 file's sha256 that a version carries after its `+`. */
export const VERSION_HASH_DIGITS = 8;

/**
 * A version names the exact weights: `<date>+<first 8 hex digits of the INT8 file's sha256>`
 * (training/ writes it, e.g. `2026.11.27+58f4004b`), so two trainings on one day never share a
 * version and a model.json moved next to other files cannot claim their version. Returns why
 * `version` does not match `int8Sha256`, or null. A version without `+` (written before the
 * suffix existed) is not checked here: the loader accepts it with a warning.
 */
export function versionHashProblem(version: string, int8Sha256: string): string | null {
  const plus = version.lastIndexOf('+');
  if (plus < 0) return null;
  const suffix = version.slice(plus + 1);
  if (!new RegExp(`^[0-9a-f]{${VERSION_HASH_DIGITS}}$`).test(suffix))
    return `'${version}': after '+' expected the first ${VERSION_HASH_DIGITS} hex digits of files.int8.sha256`;
  const expected = int8Sha256.slice(0, VERSION_HASH_DIGITS);
  if (suffix !== expected)
    return (
      `'${version}' names INT8 weights ${suffix}…, but files.int8.sha256 is ${expected}…: ` +
      'this model.json does not describe the model it claims to be'
    );
  return null;
}

/**
 * The version a changed model gets: `<UTC date of today>+<INT8 hash prefix>`. The same weights
 * with another out-of-domain gate are another model (other refusals), so a second change on the
 * day of `previous` counts up after the date (`2026.12.05.2+…`, `.3`, …) instead of repeating
 * the version the earlier model is recorded under.
 */
export function nextModelVersion(previous: string, int8Sha256: string, today: Date): string {
  const date = today.toISOString().slice(0, 10).replaceAll('-', '.');
  const hash = int8Sha256.slice(0, VERSION_HASH_DIGITS);
  const sameDay = /^(\d{4}\.\d{2}\.\d{2})(?:\.(\d+))?\+/.exec(previous);
  if (sameDay?.[1] !== date) return `${date}+${hash}`;
  return `${date}.${Number(sameDay[2] ?? 1) + 1}+${hash}`;
}

export const manifestSchema = z
  .looseObject({
    name: z.string().min(1),
    version: z.string().min(1),
    created: z.string().optional(),
    classes: z.array(z.string().min(1)).min(2),
    folders: z.array(z.string().min(1)).min(2),
    malignant: z.array(z.boolean()).min(2),
    inputs: z.strictObject({ original: inputSchema, segmented: inputSchema }),
    output: z.string().min(1),
    /** The pooled-feature output the out-of-domain gate reads; files without it still load. */
    features_output: z.string().min(1).optional(),
    // Further precisions (e.g. fp16) may be listed; int8 (CPU) and fp32 (CUDA) must be.
    files: z.looseObject({ int8: fileSchema, fp32: fileSchema, gate: fileSchema.optional() }),
    split: z.looseObject({ file: z.string(), sha256: z.string() }).optional(),
    temperature: z.number().positive(),
    threshold: probability,
    uncertain_band: z.tuple([probability, probability]),
    /**
     * Test-time views averaged per image (src/infer/views.ts); the temperature and threshold
     * were fitted on that average. Absent: 1, the image as taken (models made before views).
     */
    views: z.union(VIEW_COUNTS.map((n) => z.literal(n))).default(1),
    // Provenance, except `colour`: the normalisation the model was trained with, which the
    // daemon must apply too (absent or null: none, the behaviour of models trained without it).
    preprocessing: z.looseObject({ colour: colourNormalisationSchema.nullable().optional() }).optional(),
    metrics: z.record(z.string(), z.unknown()).optional(),
    training: z.record(z.string(), z.unknown()).optional(),
    /** The out-of-domain gate's fitted thresholds (src/gate/); absent = images are not checked. */
    gate: gateSectionSchema.optional(),
    /**
     * How the training pictures were taken, for checking another microscope against them
     * (scripts/fit-magnification.ts); absent: not checked.
     */
    acquisition: z.looseObject({ red_cell_radius: redCellReferenceSchema.optional() }).optional(),
  })
  .superRefine((m, ctx) => {
    const n = m.classes.length;
    if (m.folders.length !== n)
      ctx.addIssue({ code: 'custom', path: ['folders'], message: `expected ${n} entries, one per class` });
    if (m.malignant.length !== n)
      ctx.addIssue({ code: 'custom', path: ['malignant'], message: `expected ${n} entries, one per class` });
    if (new Set(m.classes).size !== n)
      ctx.addIssue({ code: 'custom', path: ['classes'], message: 'class names must be unique' });
    if (!m.malignant.includes(true) || !m.malignant.includes(false))
      ctx.addIssue({
        code: 'custom',
        path: ['malignant'],
        message: 'needs at least one malignant and one benign class',
      });
    const versionProblem = versionHashProblem(m.version, m.files.int8.sha256);
    if (versionProblem) ctx.addIssue({ code: 'custom', path: ['version'], message: versionProblem });
    if (m.gate?.features && m.gate.features.file !== 'gate')
      ctx.addIssue({
        code: 'custom',
        path: ['gate', 'features', 'file'],
        message: "must be 'gate' (files.gate)",
      });
    if (m.gate?.features && !m.files.gate)
      ctx.addIssue({
        code: 'custom',
        path: ['files', 'gate'],
        message: 'gate.features needs its statistics file listed',
      });
    if (m.uncertain_band[0] > m.uncertain_band[1])
      ctx.addIssue({ code: 'custom', path: ['uncertain_band'], message: 'low must not exceed high' });
    const [, , ho, wo] = m.inputs.original.shape;
    const [, , hs, ws] = m.inputs.segmented.shape;
    if (ho !== hs || wo !== ws)
      ctx.addIssue({
        code: 'custom',
        path: ['inputs', 'segmented', 'shape'],
        message: 'must have the same height and width as inputs.original',
      });
    if (m.views > 1 && (ho !== wo || hs !== ws))
      ctx.addIssue({ code: 'custom', path: ['views'], message: 'turned views need square inputs' });
  });

export type ModelManifestJson = z.infer<typeof manifestSchema>;

/** model.json after validation, with absolute file paths resolved against its folder. */
export interface ModelManifest extends ModelManifestJson {
  /** The folder holding model.json, absolute. */
  dir: string;
  /** Image height and width the model takes (from inputs.original.shape). */
  imageSize: { height: number; width: number };
  /** Absolute paths of the ONNX files, keyed by precision. */
  paths: { int8: string; fp32: string };
  /**
   * Why this model loads but should be looked at (an old-style version that does not name its
   * weights); the classifier logs each as a warning. Empty for a current model.json.
   */
  warnings: string[];
}

/** Streams a file through sha256 (model files can be tens of MB; no need to hold them twice). */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolvePromise(hash.digest('hex')));
  });
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys')
        return issue.keys.map((k) => `${[...issue.path, k].join('.')}: unknown key`).join('; ');
      const path = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
      return `${path}: ${issue.message.replace(/^Invalid input: /, '')}`;
    })
    .join('; ');
}

/** A model file path must stay inside the model folder: model.json is data, not a pointer anywhere. */
function resolveInside(dir: string, rel: string, key: string, manifestPath: string): string {
  const norm = normalize(rel);
  if (isAbsolute(rel) || norm === '..' || norm.startsWith(`..${sep}`))
    throw new ModelError(`${manifestPath}: ${key}: '${rel}' must be a path inside the model folder`);
  return join(dir, norm);
}

/**
 * Checks that the file at `path` is the one model.json describes: its size, then its sha256.
 * Called for every model file when model.json is loaded and again before each worker restart,
 * so a file swapped or damaged while the daemon runs is never loaded. Throws ModelError.
 */
export async function verifyModelFile(
  path: string,
  entry: { sha256: string; bytes: number },
  listedAs: string,
): Promise<void> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelError(
      code === 'ENOENT'
        ? `model file missing: ${path} (${listedAs})`
        : `cannot read model file ${path}: ${code ?? String(err)}`,
    );
  }
  if (size !== entry.bytes)
    throw new ModelError(
      `model file ${path} has ${size} bytes, model.json says ${entry.bytes}: wrong or damaged file`,
    );
  const actual = await sha256File(path);
  if (actual !== entry.sha256)
    throw new ModelError(
      `sha256 mismatch for model file ${path}: expected ${entry.sha256}, got ${actual} (wrong or damaged file)`,
    );
}

/**
 * Reads `<dir>/model.json`, validates it and checks every model file's size and sha256.
 * Throws ModelError with a one-line message naming the file or key. The split file is
 * provenance (it lives with the training code, not on the device) and is not checked here.
 */
export async function loadModelManifest(modelDir: string): Promise<ModelManifest> {
  const dir = resolve(modelDir);
  const manifestPath = join(dir, 'model.json');
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new ModelError(`no model.json in ${dir}: set model.dir to a folder with a trained model`);
    throw new ModelError(`cannot read ${manifestPath}: ${code ?? String(err)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelError(`${manifestPath}: not valid JSON: ${(err as Error).message}`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) throw new ModelError(`${manifestPath}: ${formatIssues(parsed.error)}`);
  const m = parsed.data;

  const paths = {
    int8: resolveInside(dir, m.files.int8.path, 'files.int8.path', manifestPath),
    fp32: resolveInside(dir, m.files.fp32.path, 'files.fp32.path', manifestPath),
  };
  for (const precision of ['int8', 'fp32'] as const)
    await verifyModelFile(paths[precision], m.files[precision], `files.${precision}.path in ${manifestPath}`);
  if (m.files.gate)
    await verifyModelFile(
      resolveInside(dir, m.files.gate.path, 'files.gate.path', manifestPath),
      m.files.gate,
      `files.gate.path in ${manifestPath}`,
    );
  const [, , height, width] = m.inputs.original.shape;
  const warnings = m.version.includes('+')
    ? []
    : [
        `${manifestPath}: version '${m.version}' does not name its weights (no '+<sha256 prefix>' of the ` +
          'INT8 file): results record the model by this version only; retrain or re-export to get one that does',
      ];
  return { ...m, dir, imageSize: { height, width }, paths, warnings };
}
