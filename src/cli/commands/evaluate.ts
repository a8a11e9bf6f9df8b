import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { Command } from '../command.js';
import { parseCommandArgs, UsageError, UserError } from '../command.js';
import { evaluationInputs, listImagesUnder } from '../inputs.js';
import { cliLogger } from '../logger.js';
import { classifyFile, describeFailure, isUserFacing, openModel } from '../../evaluate/classify-file.js';
import {
  DatasetError,
  labelList,
  listClassFolders,
  readFileList,
  type LabelledFile,
} from '../../evaluate/dataset.js';
import {
  colourFigures,
  evaluateLabelled,
  evaluateUnlabelled,
  type Judged,
  type LabelledEvaluation,
  type UnlabelledEvaluation,
} from '../../evaluate/gate-metrics.js';
import { evaluationRecordsCsv, silentMissLines, type ImageRecord } from '../../evaluate/records.js';
import { formatText, formatUnlabelled, type WithColour } from '../../evaluate/report-text.js';
import { countsForColourWatch } from '../../gate/colour-drift.js';
import { magnificationByClass, magnificationFigures } from '../../gate/red-cell-size.js';

type OpenedModel = Awaited<ReturnType<typeof openModel>>;
type ModelInfo = OpenedModel['classifier']['info'];
interface Failure {
  file: string;
  kind: string;
  error: string;
}
interface Options {
  data: string;
  json?: boolean | undefined;
  model?: string | undefined;
  config?: string | undefined;
  files?: string | undefined;
  split?: string | undefined;
  subset?: string | undefined;
  'no-gate'?: boolean | undefined;
  records?: string | undefined;
}

/** An image to evaluate: with its class (class-per-folder set or list) or without (a plain folder). */
type EvalItem = Omit<LabelledFile, 'truth'> & { truth: number | null };

function parseOptions(argv: string[]): Options {
  const parsed = parseCommandArgs(argv, {
    options: {
      data: { type: 'string' },
      json: { type: 'boolean' },
      model: { type: 'string' },
      config: { type: 'string' },
      files: { type: 'string' },
      split: { type: 'string' },
      subset: { type: 'string' },
      'no-gate': { type: 'boolean' },
      records: { type: 'string' },
    },
  });
  const v = parsed.values;
  if (!v.data) throw new UsageError('--data DIR is required');
  if (v.files && v.split) throw new UsageError('give --files or --split, not both');
  if (v.subset && !v.split) throw new UsageError('--subset needs --split');
  return { ...v, data: v.data };
}

/**
 * A folder that holds none of the model's class folders is a set without labels (another lab's
 * smears, a day's captures): every image under it, for the gate's figures and the flag count.
 * A folder with some class folders but not all stays an error (a class silently missing would
 * inflate the accuracy).
 */
async function unlabelledImages(
  v: Options,
  dataDir: string,
  opened: OpenedModel,
): Promise<EvalItem[] | null> {
  if (v.files || v.split) return null;
  if (opened.classifier.info.folders.some((f) => existsSync(join(dataDir, f)))) return null;
  let paths: string[];
  try {
    paths = await listImagesUnder(dataDir, opened.config.capture.extensions);
  } catch (err) {
    throw new UserError(`cannot read ${dataDir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return paths.map((absPath) => ({
    absPath,
    relPath: relative(dataDir, absPath).split(sep).join('/'),
    truth: null,
  }));
}

/**
 * The images to evaluate: a list (--files), one split (--split), every class folder, or every
 * image of a folder without class folders (unlabelled).
 */
async function selectImages(v: Options, dataDir: string, opened: OpenedModel): Promise<EvalItem[]> {
  const { folders } = opened.classifier.info;
  const extensions = opened.config.capture.extensions;
  const unlabelled = await unlabelledImages(v, dataDir, opened);
  if (unlabelled) {
    if (unlabelled.length === 0) throw new UserError(`no images found under ${dataDir}`);
    return unlabelled;
  }
  let items: LabelledFile[];
  try {
    if (v.files) {
      let listed;
      try {
        listed = await evaluationInputs(v.files, dataDir, extensions);
      } catch (err) {
        throw new DatasetError(`--files ${v.files}: ${(err as Error).message}`);
      }
      items = labelList(dataDir, listed ?? (await readFileList(v.files)), folders);
    } else if (v.split) items = labelList(dataDir, await readFileList(v.split, v.subset ?? 'test'), folders);
    else items = await listClassFolders(dataDir, folders, extensions);
  } catch (err) {
    if (err instanceof DatasetError) throw new UserError(err.message);
    throw err;
  }
  if (items.length === 0) throw new UserError(`no images found under ${dataDir}`);
  return items;
}

type JudgedItem = Judged & { truth: number | null; redCellRadius: number | null };

/** Classifies and judges every image at the daemon's concurrency (decode/segment overlaps inference). */
async function classifyAll(
  opened: OpenedModel,
  items: EvalItem[],
  progress: boolean,
): Promise<{ judged: JudgedItem[]; failures: Failure[]; records: ImageRecord[] }> {
  const results = new Array<JudgedItem | undefined>(items.length);
  const records = new Array<ImageRecord>(items.length);
  // The red cells' size is measured where it is judged: with the gate, for a model that records it.
  const redCells = opened.gate !== null && Boolean(opened.classifier.info.redCellSize);
  const failures: Failure[] = [];
  let next = 0;
  let done = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) {
      const item = items[i] as EvalItem;
      try {
        const out = await classifyFile(opened, item.absPath, { redCells });
        if (item.sha256 && out.sha256 !== item.sha256)
          throw Object.assign(
            new Error(`bytes differ from the list (sha256 ${out.sha256}, list ${item.sha256})`),
            { kind: 'changed' },
          );
        const judged: JudgedItem = {
          truth: item.truth,
          probabilities: out.prediction.probabilities,
          pBall: out.prediction.pBall,
          domain: out.domain,
          redCellRadius: out.redCellRadius ?? null,
        };
        results[i] = judged;
        records[i] = { file: item.relPath, truth: item.truth, outcome: { ...judged, sha256: out.sha256 } };
      } catch (err) {
        if (err instanceof UserError) throw err;
        const { kind, message } = describeFailure(err);
        failures.push({ file: item.relPath, kind, error: message });
        records[i] = { file: item.relPath, truth: item.truth, outcome: { error: `${kind}: ${message}` } };
      }
      done++;
      if (progress && done % 50 === 0) process.stderr.write(`\r${done}/${items.length}`);
    }
  };
  await Promise.all(Array.from({ length: opened.config.pipeline.concurrency }, lane));
  if (progress) process.stderr.write('\r');
  return { judged: results.filter((r): r is JudgedItem => r !== undefined), failures, records };
}

/**
 * --records FILE: one CSV row per image (src/evaluate/records.ts). Written empty before the
 * images are classified too, so that a path that cannot be written fails at once, not after a
 * check set's last image.
 */
async function writeRecords(file: string, csv: string): Promise<void> {
  try {
    await writeFile(file, csv);
  } catch (err) {
    throw new UserError(`--records ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** What the --json output says about the model and the data besides the metrics. */
function jsonContext(v: Options, dataDir: string, info: ModelInfo) {
  return {
    model: {
      name: info.name,
      version: info.version,
      file: basename(info.modelFile),
      sha256: info.modelSha256,
      executionProvider: info.executionProvider,
      precision: info.precision,
      temperature: info.temperature,
      views: info.views,
      threshold: info.threshold,
      uncertain_band: info.uncertainBand,
    },
    data: {
      dir: dataDir,
      files: v.files ?? null,
      split: v.split ?? null,
      subset: v.split ? (v.subset ?? 'test') : null,
    },
  };
}

/** The report: the model's metrics over the accepted images of a labelled set, or the unlabelled figures. */
function evaluation(judged: JudgedItem[], info: ModelInfo, gate: boolean, labelled: boolean) {
  const colour_drift = gate ? colourFigures(judged, info.colourDrift) : null;
  // The same images as the green balance: screened, or refused only in ways that leave them
  // this camera's smears (a blank frame or another lab's smear says nothing of its magnification).
  const watched = judged.filter((j) => j.domain && countsForColourWatch(j.domain));
  const reference = gate ? info.redCellSize : null;
  const magnification = reference
    ? magnificationFigures(
        watched.map((j) => j.redCellRadius),
        reference,
      )
    : null;
  if (!labelled)
    return {
      m: {
        ...evaluateUnlabelled(judged, info.threshold, info.uncertainBand, gate),
        colour_drift,
        magnification,
      },
    };
  const items = judged as (JudgedItem & { truth: number })[];
  const m = evaluateLabelled(items, info.classes, info.malignant, info.threshold, info.uncertainBand, gate);
  // A labelled set also class by class, each against its own class's training range.
  const byClass = reference
    ? magnificationByClass(
        watched.map((j) => ({ className: info.classes[j.truth as number] ?? '', radius: j.redCellRadius })),
        reference,
      )
    : null;
  return {
    m: { ...m, colour_drift, magnification: magnification && { ...magnification, by_class: byClass } },
  };
}

const command: Command = {
  name: 'evaluate',
  summary: "evaluate the model and its out-of-domain gate on an image set through the daemon's exact path",
  usage: `usage: blastwatch evaluate --data DIR [--json] [--no-gate] [--model DIR] [--config FILE]
                           [--files LIST | --split FILE [--subset NAME]] [--records FILE]

Classifies every image of a class-per-folder set (DIR/<folder>/*, folders from model.json:
Benign, Early, Pre, Pro) exactly as the daemon does (same decode, segmentation, model, gate,
threshold). The out-of-domain gate judges each image first; the figures cover the images it
accepted (the only ones the daemon gives a verdict): accuracy, the confusion matrix (rows =
truth), per-class precision / recall / specificity / F1, B-ALL (any malignant class) sensitivity
/ specificity at the threshold, and the silent misses (malignant, accepted, not flagged).
A DIR with none of the class folders is a set without labels (another lab, a day's captures):
every image under it is counted, accepted or rejected, and flagged.
  --json          one JSON object. Class-per-folder: n (images classified), n_accepted,
                  rejected {total, by_reason, by_class}, silent_misses, silent_miss_share, gate,
                  site_check {targets, missed, silent_miss_upper_95, verdict} (the set against
                  the targets for another microscope; null with --no-gate),
                  and over the accepted images: accuracy, macro_f1, classes, confusion, per_class,
                  malignant {sensitivity, specificity, tp, fn, tn, fp, threshold}, ece,
                  needs_review; colour_drift {measured, median, high, above} (the green
                  balance of the images accepted, or refused only for their green or for a
                  benign call their features contradict, against the training images'
                  highest; null with
                  --no-gate or a model without it); magnification {measured, median, low, high,
                  needed, differs} (the same images' red-cell radius against the training
                  images' range: differs "smaller" or "larger" once at least "needed" are
                  measured, else null; class-per-folder sets add by_class, the same per class
                  against that class's training range; null with --no-gate or a model without
                  it); then model,
                  data, failed, seconds. Without class folders: n, n_accepted, rejected {total,
                  by_reason}, flagged, needs_review, gate, colour_drift, magnification, model,
                  data, failed, seconds. by_reason
                  counts an image under each of its reasons.
  --no-gate       judge nothing: every image is accepted (the behaviour before the gate, for
                  comparison); gate: false in the JSON
  --records FILE  also write what was said of each image, one CSV row per image (file, sha256,
                  truth, status accepted / out_of_domain / failed, reasons, class, p_ball,
                  flagged, needs_review, correct, silent_miss (empty for a refused image),
                  each class's probability, red_cell_radius_px, error): the fields to open
                  after a check. The readable report names the silent misses (up to 10)
                  either way.
  --files LIST    only these images: a text file of paths relative to DIR (one per line) or a
                  JSON list of paths / {path, sha256} objects; a folder inside DIR (its images,
                  recursively); or - (paths on stdin, one per line, relative to DIR or absolute)
  --split FILE    only the images of one split of training/split.json ...
  --subset NAME   ... this one (default: test); their sha256 is checked against the file
  --model DIR     folder with model.json (default: model.dir from the config, else the bundled model)
  --config FILE   config file merged over config/default.yaml (default: $BLASTWATCH_CONFIG)
Exit 0 when every image was classified, 1 if any failed (metrics cover the others).`,
  async run(argv) {
    const v = parseOptions(argv);
    const dataDir = resolve(v.data);
    const gate = v['no-gate'] !== true;
    if (v.records) await writeRecords(v.records, '');
    let opened: OpenedModel;
    try {
      opened = await openModel({ configFile: v.config, modelDir: v.model, log: cliLogger(), gate });
    } catch (err) {
      if (isUserFacing(err)) throw new UserError(err.message);
      throw err;
    }
    const info = opened.classifier.info;
    const started = performance.now();
    let outcome: Awaited<ReturnType<typeof classifyAll>>;
    let labelled: boolean;
    try {
      const items = await selectImages(v, dataDir, opened);
      labelled = items[0]?.truth !== null;
      outcome = await classifyAll(opened, items, !v.json && process.stderr.isTTY);
    } finally {
      await opened.classifier.close();
    }
    const { judged, failures, records } = outcome;
    const { m } = evaluation(judged, info, gate, labelled);
    const seconds = (performance.now() - started) / 1000;
    if (v.records) await writeRecords(v.records, evaluationRecordsCsv(records, info));
    if (v.json) {
      process.stdout.write(
        `${JSON.stringify({ ...m, ...jsonContext(v, dataDir, info), failed: failures, seconds })}\n`,
      );
    } else {
      const header =
        `model ${info.name} ${info.version}: ${basename(info.modelFile)} (${info.precision} on ${info.executionProvider}), ` +
        `data ${dataDir}${v.split ? ` split ${v.split}:${v.subset ?? 'test'}` : v.files ? ` files ${v.files}` : ''}` +
        (labelled ? '' : ' (no class folders: unlabelled)');
      process.stdout.write(
        labelled
          ? formatText(m as WithColour<LabelledEvaluation>, header, failures.length)
          : formatUnlabelled(m as WithColour<UnlabelledEvaluation>, header, failures.length),
      );
      for (const line of silentMissLines(records, info)) process.stdout.write(`${line}\n`);
      for (const f of failures) process.stderr.write(`${f.file}: error (${f.kind}): ${f.error}\n`);
      process.stderr.write(`${judged.length + failures.length} images in ${seconds.toFixed(1)} s\n`);
    }
    return failures.length > 0 ? 1 : 0;
  },
};
export default command;
