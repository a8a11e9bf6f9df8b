import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError, UserError } from '../command.js';
import { evaluationInputs } from '../inputs.js';
import { cliLogger } from '../logger.js';
import { classifyFile, describeFailure, isUserFacing, openModel } from '../../evaluate/classify-file.js';
import {
  DatasetError,
  labelList,
  listClassFolders,
  readFileList,
  type LabelledFile,
} from '../../evaluate/dataset.js';
import { computeMetrics, type EvaluationMetrics, type Scored } from '../../evaluate/metrics.js';

const pct = (v: number | null): string => (v === null ? 'n/a' : `${(v * 100).toFixed(2)}%`);

function formatText(m: EvaluationMetrics, header: string, failed: number): string {
  const width = Math.max(...m.classes.map((c) => c.length), 'truth \\ predicted'.length);
  const cell = Math.max(6, ...m.classes.map((c) => c.length));
  const lines = [header, `images: ${m.n}${failed ? ` (+${failed} failed, not counted)` : ''}`];
  lines.push(`accuracy: ${pct(m.accuracy)}   macro-F1: ${m.macro_f1.toFixed(4)}   ECE: ${m.ece.toFixed(4)}`);
  lines.push('', 'confusion matrix (rows = truth, columns = predicted):');
  lines.push(`${'truth \\ predicted'.padEnd(width)}  ${m.classes.map((c) => c.padStart(cell)).join('  ')}`);
  m.confusion.forEach((row, i) =>
    lines.push(
      `${(m.classes[i] as string).padEnd(width)}  ${row.map((v) => String(v).padStart(cell)).join('  ')}`,
    ),
  );
  lines.push('', `${'class'.padEnd(width)}  precision     recall  specificity         F1  support`);
  for (const c of m.classes) {
    const p = m.per_class[c];
    if (!p) continue;
    lines.push(
      `${c.padEnd(width)}  ${pct(p.precision).padStart(9)}  ${pct(p.recall).padStart(9)}  ${pct(p.specificity).padStart(11)}` +
        `  ${p.f1.toFixed(4).padStart(9)}  ${String(p.support).padStart(7)}`,
    );
  }
  const b = m.malignant;
  lines.push(
    '',
    `B-ALL (any malignant class) vs benign, flag = P(B-ALL) >= ${b.threshold}:`,
    `  sensitivity ${pct(b.sensitivity)} (${b.tp}/${b.tp + b.fn})   specificity ${pct(b.specificity)} (${b.tn}/${b.tn + b.fp})`,
    `  needs review (P(B-ALL) in the uncertain band): ${m.needs_review}`,
  );
  return `${lines.join('\n')}\n`;
}

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
}

function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        data: { type: 'string' },
        json: { type: 'boolean' },
        model: { type: 'string' },
        config: { type: 'string' },
        files: { type: 'string' },
        split: { type: 'string' },
        subset: { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (!v.data) throw new UsageError('--data DIR is required');
  if (v.files && v.split) throw new UsageError('give --files or --split, not both');
  if (v.subset && !v.split) throw new UsageError('--subset needs --split');
  return { ...v, data: v.data };
}

/** The labelled images to evaluate: a list (--files), one split (--split), or every class folder. */
async function selectImages(v: Options, dataDir: string, opened: OpenedModel): Promise<LabelledFile[]> {
  const { folders } = opened.classifier.info;
  const extensions = opened.config.capture.extensions;
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

/** Classifies every image at the daemon's concurrency (decode/segment overlaps inference). */
async function classifyAll(
  opened: OpenedModel,
  items: LabelledFile[],
  progress: boolean,
): Promise<{ scored: Scored[]; failures: Failure[] }> {
  const results = new Array<Scored | undefined>(items.length);
  const failures: Failure[] = [];
  let next = 0;
  let done = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) {
      const item = items[i] as LabelledFile;
      try {
        const out = await classifyFile(opened, item.absPath);
        if (item.sha256 && out.sha256 !== item.sha256)
          throw Object.assign(
            new Error(`bytes differ from the list (sha256 ${out.sha256}, list ${item.sha256})`),
            { kind: 'changed' },
          );
        results[i] = {
          truth: item.truth,
          probabilities: out.prediction.probabilities,
          pBall: out.prediction.pBall,
        };
      } catch (err) {
        if (err instanceof UserError) throw err;
        const { kind, message } = describeFailure(err);
        failures.push({ file: item.relPath, kind, error: message });
      }
      done++;
      if (progress && done % 50 === 0) process.stderr.write(`\r${done}/${items.length}`);
    }
  };
  await Promise.all(Array.from({ length: opened.config.pipeline.concurrency }, lane));
  if (progress) process.stderr.write('\r');
  return { scored: results.filter((r): r is Scored => r !== undefined), failures };
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

const command: Command = {
  name: 'evaluate',
  summary: "evaluate the model on a class-per-folder image set through the daemon's exact path",
  usage: `usage: blastwatch evaluate --data DIR [--json] [--model DIR] [--config FILE]
                           [--files LIST | --split FILE [--subset NAME]]

Classifies every image of a class-per-folder set (DIR/<folder>/*, folders from model.json:
Benign, Early, Pre, Pro) exactly as the daemon does (same decode, segmentation, model, threshold)
and prints accuracy, the confusion matrix (rows = truth), per-class precision / recall /
specificity / F1, and B-ALL (any malignant class) sensitivity / specificity at the threshold.
  --json          one JSON object: n, accuracy, macro_f1, classes, confusion, per_class,
                  malignant {sensitivity, specificity, tp, fn, tn, fp, threshold}, ece, model, failed
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
    let opened: OpenedModel;
    try {
      opened = await openModel({ configFile: v.config, modelDir: v.model, log: cliLogger() });
    } catch (err) {
      if (isUserFacing(err)) throw new UserError(err.message);
      throw err;
    }
    const info = opened.classifier.info;
    const started = performance.now();
    let outcome: { scored: Scored[]; failures: Failure[] };
    try {
      const items = await selectImages(v, dataDir, opened);
      outcome = await classifyAll(opened, items, !v.json && process.stderr.isTTY);
    } finally {
      await opened.classifier.close();
    }
    const { scored, failures } = outcome;
    const metrics = computeMetrics(scored, info.classes, info.malignant, info.threshold, info.uncertainBand);
    const seconds = (performance.now() - started) / 1000;
    if (v.json) {
      process.stdout.write(
        `${JSON.stringify({ ...metrics, ...jsonContext(v, dataDir, info), failed: failures, seconds })}\n`,
      );
    } else {
      const header =
        `model ${info.name} ${info.version}: ${basename(info.modelFile)} (${info.precision} on ${info.executionProvider}), ` +
        `data ${dataDir}${v.split ? ` split ${v.split}:${v.subset ?? 'test'}` : v.files ? ` files ${v.files}` : ''}`;
      process.stdout.write(formatText(metrics, header, failures.length));
      for (const f of failures) process.stderr.write(`${f.file}: error (${f.kind}): ${f.error}\n`);
      process.stderr.write(`${scored.length + failures.length} images in ${seconds.toFixed(1)} s\n`);
    }
    return failures.length > 0 ? 1 : 0;
  },
};
export default command;
