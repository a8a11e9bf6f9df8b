/**
 * `blastwatch evaluate --records FILE`: what the check said of each image, one CSV row per image,
 * so that whoever checks a microscope can open the fields the model got wrong, the malignant ones
 * it let through unflagged and the ones the gate refused, and keep the list with the lab's
 * records. The summary figures say how many; this says which.
 */
import type { DomainCheck } from '../domain/applicability.js';
import { decide } from '../infer/index.js';
import { csvTable, type CsvCell } from '../lis/csv.js';

/** One image as the check saw it: classified (with or without the gate's judgement) or failed. */
export interface ImageRecord {
  /** Path relative to the data folder. */
  file: string;
  /** Index of the true class; null in a set without class folders. */
  truth: number | null;
  outcome:
    | {
        sha256: string;
        probabilities: readonly number[];
        pBall: number;
        /** The gate's judgement; null when no gate ran (every image accepted). */
        domain: DomainCheck | null;
        redCellRadius: number | null;
      }
    | { error: string };
}

/** What the model stands by: its classes, which of them are malignant, and its decision rule. */
export interface RecordModel {
  classes: readonly string[];
  malignant: readonly boolean[];
  threshold: number;
  uncertainBand: readonly [number, number];
}

/** An image with a verdict whose truth is malignant and whose P(B-ALL) stayed under the threshold. */
export function isSilentMiss(record: ImageRecord, model: RecordModel): boolean {
  const o = record.outcome;
  if ('error' in o || record.truth === null || !model.malignant[record.truth]) return false;
  return (o.domain === null || o.domain.in) && o.pBall < model.threshold;
}

const argmax = (values: readonly number[]): number =>
  values.reduce((best, v, i) => (v > (values[best] ?? -Infinity) ? i : best), 0);

const yesNo = (value: boolean | null): string | null => (value === null ? null : value ? 'yes' : 'no');

/**
 * The CSV (RFC 4180, formula-safe, as the dashboard's exports): per image its file, sha256, true
 * class, status (`accepted`, `out_of_domain`, `failed`), the gate's reasons, the model's class,
 * P(B-ALL), flagged, needs_review, correct, silent_miss, each class's probability, the red-cell
 * radius and the error of a failed image. For a refused image the model's class and probabilities
 * are given (what it would have said, for judging the refusal), but flagged, needs_review,
 * correct and silent_miss stay empty: the daemon gives it no verdict, and the summary's figures
 * leave it out.
 */
export function evaluationRecordsCsv(records: readonly ImageRecord[], model: RecordModel): string {
  const header = [
    'file',
    'sha256',
    'truth',
    'status',
    'reasons',
    'class',
    'p_ball',
    'flagged',
    'needs_review',
    'correct',
    'silent_miss',
    ...model.classes.map((c) => `p_${c}`),
    'red_cell_radius_px',
    'error',
  ];
  const rows = records.map((r): CsvCell[] => {
    const truth = r.truth === null ? null : (model.classes[r.truth] ?? null);
    const o = r.outcome;
    if ('error' in o) return [r.file, null, truth, 'failed', ...header.slice(4, -1).map(() => null), o.error];
    const accepted = o.domain === null || o.domain.in;
    const predicted = argmax(o.probabilities);
    const decision = decide(o.pBall, model.threshold, model.uncertainBand);
    const verdict = (value: boolean | null): string | null => (accepted ? yesNo(value) : null);
    return [
      r.file,
      o.sha256,
      truth,
      accepted ? 'accepted' : 'out_of_domain',
      o.domain?.reasons.length ? o.domain.reasons.join(' ') : null,
      model.classes[predicted] ?? null,
      Number(o.pBall.toFixed(6)),
      verdict(decision.flag),
      verdict(decision.needsReview),
      verdict(r.truth === null ? null : predicted === r.truth),
      verdict(r.truth === null ? null : isSilentMiss(r, model)),
      ...model.classes.map((_, i) => Number((o.probabilities[i] ?? 0).toFixed(6))),
      o.redCellRadius === null ? null : Number(o.redCellRadius.toFixed(3)),
      null,
    ];
  });
  return csvTable(header, rows);
}

/** The report's lines naming the silent misses, at most `max` of them. */
export function silentMissLines(records: readonly ImageRecord[], model: RecordModel, max = 10): string[] {
  const missed = records.filter((r) => isSilentMiss(r, model));
  if (missed.length === 0) return [];
  const lines = ['  the silent misses, to look at first:'];
  for (const r of missed.slice(0, max)) {
    const o = r.outcome as { pBall: number };
    lines.push(`    ${r.file} (P(B-ALL) ${o.pBall.toFixed(3)})`);
  }
  if (missed.length > max)
    lines.push(`    and ${missed.length - max} more (--records FILE lists every image)`);
  return lines;
}
