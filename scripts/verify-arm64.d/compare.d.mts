// Types for compare.mjs (plain JavaScript so the host runs it without a build or tsx).
export interface Prediction {
  file: string;
  cls: string | undefined;
  probs: Record<string, number> | undefined;
  pBall: number | undefined;
  flag: boolean | undefined;
}
export interface ComparisonResult {
  ok: boolean;
  problems: string[];
}
export function argmax(values: ArrayLike<number>): number;
export function extractPredictions(doc: unknown): Map<string, Prediction>;
export function maxProbDiff(
  a: Record<string, number> | undefined,
  b: Record<string, number> | undefined,
): number;
export function comparePredictions(
  hostDoc: unknown,
  armDoc: unknown,
): ComparisonResult & { images: number; maxProbDiff: number; maxDiffFile: string };
export function compareProbe(
  host: unknown,
  arm: unknown,
): ComparisonResult & {
  images: number;
  compared: number;
  sameDecode: number;
  sameCamera: number;
  maxDiff: { int8: number; fp32: number };
  notes: string[];
};
export function compareMessages(
  lines: string[],
  expectedDoc: unknown,
  expected: number,
): ComparisonResult & { results: number; checkedAgainstEvaluate: number; topics: string[] };
export function compareMetrics(
  host: unknown,
  arm: unknown,
): ComparisonResult & {
  images: number;
  accuracy: { x86: number | undefined; arm64: number | undefined };
  eceDiff: number;
  executionProvider: string | undefined;
  precision: string | undefined;
};
