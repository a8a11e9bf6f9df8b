import type { Command } from '../command.js';
import { parseCommandArgs, UsageError, UserError } from '../command.js';
import { expandImageInputs } from '../inputs.js';
import { cliLogger } from '../logger.js';
import { DOMAIN_REASON_TEXT } from '../../domain/applicability.js';
import {
  classifyFile,
  describeFailure,
  isUserFacing,
  openModel,
  type ImageOutcome,
} from '../../evaluate/classify-file.js';
import type { ModelInfo } from '../../infer/index.js';

const fmt = (p: number): string => p.toFixed(4);

/**
 * One image's line: the verdict, or for an image the out-of-domain gate refused, none (no class,
 * P(B-ALL) or flag: the daemon would neither flag it nor call it benign) and the reasons.
 */
export function outcomeLine(file: string, out: ImageOutcome, info: ModelInfo, json: boolean): string {
  const { prediction: p, decision: d, domain } = out;
  const model = { name: info.name, version: info.version, execution_provider: info.executionProvider };
  if (domain && !domain.in) {
    const why = domain.reasons.map((r) => DOMAIN_REASON_TEXT[r]).join('; ');
    if (!json) return `${file}: cannot screen: unlike the images the model was trained on (${why})\n`;
    const noVerdict = { class: null, class_index: null, p_ball: null, flag: null, needs_review: null };
    const line = { file, status: 'out_of_domain', ...noVerdict, label: 'cannot-screen', probabilities: null };
    return `${JSON.stringify({ ...line, domain, threshold: info.threshold, model })}\n`;
  }
  if (json)
    return `${JSON.stringify({
      file,
      status: 'done',
      class: p.className,
      class_index: p.classIndex,
      p_ball: p.pBall,
      flag: d.flag,
      needs_review: d.needsReview,
      label: d.label,
      probabilities: p.byClass,
      domain,
      threshold: info.threshold,
      model,
    })}\n`;
  const flag = d.flag ? 'FLAG (suspicious for B-ALL)' : 'not flagged';
  const review = d.needsReview ? ', needs review' : '';
  const probs = info.classes.map((c) => `${c} ${fmt(p.byClass[c] as number)}`).join('  ');
  return `${file}: ${p.className}  P(B-ALL) ${fmt(p.pBall)}  ${flag}${review}\n  ${probs}\n`;
}

const command: Command = {
  name: 'classify',
  summary: 'classify images with the bundled model and print per-class probabilities',
  usage: `usage: blastwatch classify <image|folder|->... [--json] [--model DIR] [--config FILE]

Runs each image through the daemon's path (decode, segment, model, out-of-domain gate, decision)
and prints the predicted class, P(B-ALL) = 1 - P(Benign), the flag (P(B-ALL) >= threshold),
whether it needs review (P(B-ALL) inside the uncertain band) and every class probability; for an
image unlike the training images, "cannot screen" and why, with no verdict (JSON: status
out_of_domain, class, p_ball and flag null, domain {in, reasons, scores}).
A folder stands for every image under it (recursively, capture.extensions of the config);
'-' reads newline-separated paths from stdin (e.g. find ... | blastwatch classify -).
A screening aid: a flag means "a person should look at this", not a diagnosis.
  --json          one JSON object per image and line on stdout
  --model DIR     folder with model.json (default: model.dir from the config, else the bundled model)
  --config FILE   config file merged over config/default.yaml (default: $BLASTWATCH_CONFIG)
Exit 0 when every image was classified, 1 if any failed (the others are still printed).`,
  async run(argv) {
    const parsed = parseCommandArgs(argv, {
      allowPositionals: true,
      options: { json: { type: 'boolean' }, model: { type: 'string' }, config: { type: 'string' } },
    });
    const inputs = parsed.positionals;
    if (inputs.length === 0) throw new UsageError('give at least one image, folder or -');
    const json = parsed.values.json === true;
    const log = cliLogger();
    let opened;
    try {
      opened = await openModel({ configFile: parsed.values.config, modelDir: parsed.values.model, log });
    } catch (err) {
      if (isUserFacing(err)) throw new UserError(err.message);
      throw err;
    }
    const info = opened.classifier.info;
    let failed = 0;
    try {
      let files: string[];
      try {
        files = await expandImageInputs(inputs, opened.config.capture.extensions);
      } catch (err) {
        throw new UserError(`cannot list the images: ${(err as Error).message}`);
      }
      if (files.length === 0) throw new UserError(`no images in ${inputs.join(' ')}`);
      for (const file of files) {
        try {
          process.stdout.write(outcomeLine(file, await classifyFile(opened, file), info, json));
        } catch (err) {
          failed++;
          const { kind, message } = describeFailure(err);
          if (json) process.stdout.write(`${JSON.stringify({ file, error: message, kind })}\n`);
          else process.stderr.write(`${file}: error (${kind}): ${message}\n`);
        }
      }
    } finally {
      await opened.classifier.close();
    }
    if (!json)
      process.stderr.write(
        `model ${info.name} ${info.version} (${info.precision} on ${info.executionProvider}), ` +
          `threshold ${info.threshold}, review band [${info.uncertainBand.join(', ')}]\n`,
      );
    return failed > 0 ? 1 : 0;
  },
};
export default command;
