#!/usr/bin/env node
/**
 * Comparisons for scripts/verify-arm64: host (x86) vs arm64 output of the same command.
 * Pure functions (exported for test/arm64) plus a small CLI:
 *
 *   node compare.mjs probe <host.json> <arm64.json>
 *   node compare.mjs metrics <host evaluate.json> <arm64 evaluate.json>
 *   node compare.mjs predictions <host classify.jsonl> <arm64 classify.jsonl>
 *   node compare.mjs messages <messages.jsonl> <arm64-predictions.json> <expected count>
 *
 * Prints a human summary, then one line `RESULT {json}`; exits 1 on any mismatch.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Index of the largest value. */
export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

const FILE_KEYS = ['file', 'path', 'image', 'name'];
const CLASS_KEYS = ['class', 'predicted', 'prediction', 'label', 'pred'];

/**
 * One prediction out of any object that names a file and carries probabilities (by class
 * name or as an array) and/or a class. Evaluate's exact JSON shape is owned by another module,
 * so this accepts the plausible spellings instead of one.
 */
function predictionOf(obj) {
  const fileKey = FILE_KEYS.find((k) => typeof obj[k] === 'string');
  if (!fileKey) return undefined;
  let probs;
  const raw = obj.probabilities ?? obj.probs ?? obj.scores;
  if (Array.isArray(raw) && raw.every((v) => typeof v === 'number')) {
    probs = Object.fromEntries(raw.map((v, i) => [String(i), v]));
  } else if (raw && typeof raw === 'object') {
    const entries = Object.entries(raw).filter(([, v]) => typeof v === 'number');
    if (entries.length > 0) probs = Object.fromEntries(entries);
  }
  const classKey = CLASS_KEYS.find((k) => typeof obj[k] === 'string' || typeof obj[k] === 'number');
  let cls = classKey === undefined ? undefined : String(obj[classKey]);
  if (cls === undefined && probs) {
    const names = Object.keys(probs);
    cls = names[argmax(names.map((n) => probs[n]))];
  }
  if (cls === undefined && !probs) return undefined;
  return {
    file: obj[fileKey],
    cls,
    probs,
    pBall: typeof obj.p_ball === 'number' ? obj.p_ball : undefined,
    flag: typeof obj.flag === 'boolean' ? obj.flag : undefined,
  };
}

/** Every per-image prediction found anywhere in a JSON document, keyed by file base name. */
export function extractPredictions(doc) {
  const found = new Map();
  const visit = (node) => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const p = predictionOf(node);
    if (p) {
      found.set(basename(p.file), p);
      return;
    }
    for (const value of Object.values(node)) visit(value);
  };
  visit(doc);
  return found;
}

/** Largest absolute difference between two probability maps over their shared keys. */
export function maxProbDiff(a, b) {
  let max = 0;
  for (const [k, v] of Object.entries(a ?? {})) {
    const w = b?.[k];
    if (typeof w === 'number') max = Math.max(max, Math.abs(v - w));
  }
  return max;
}

/** Same class for every image the host predicted; max probability difference. */
export function comparePredictions(hostDoc, armDoc) {
  const host = extractPredictions(hostDoc);
  const arm = extractPredictions(armDoc);
  const problems = [];
  let maxDiff = 0;
  let maxDiffFile = '';
  if (host.size === 0) problems.push('host output holds no per-image predictions');
  for (const [file, h] of host) {
    const a = arm.get(file);
    if (!a) {
      problems.push(`${file}: missing from the arm64 output`);
      continue;
    }
    if (h.cls !== a.cls) problems.push(`${file}: class ${h.cls} on x86, ${a.cls} on arm64`);
    if (h.flag !== undefined && a.flag !== undefined && h.flag !== a.flag) {
      problems.push(
        `${file}: B-ALL flag ${h.flag} on x86, ${a.flag} on arm64 (P(B-ALL) ${h.pBall} vs ${a.pBall})`,
      );
    }
    const d = Math.max(
      maxProbDiff(h.probs, a.probs),
      h.pBall !== undefined && a.pBall !== undefined ? Math.abs(h.pBall - a.pBall) : 0,
    );
    if (d > maxDiff) {
      maxDiff = d;
      maxDiffFile = file;
    }
  }
  for (const file of arm.keys()) if (!host.has(file)) problems.push(`${file}: only in the arm64 output`);
  return { ok: problems.length === 0, images: host.size, maxProbDiff: maxDiff, maxDiffFile, problems };
}

/**
 * `blastwatch evaluate --json` from both machines: the same images counted, the same confusion
 * matrix (so the same class for every image in aggregate), no failures, accuracy difference.
 */
export function compareMetrics(host, arm) {
  const problems = [];
  if (typeof host?.n !== 'number') problems.push('host evaluate output has no image count');
  if (host?.n !== arm?.n) problems.push(`evaluated ${host?.n} images on x86, ${arm?.n} on arm64`);
  if (JSON.stringify(host?.confusion) !== JSON.stringify(arm?.confusion)) {
    problems.push(
      `confusion matrices differ: x86 ${JSON.stringify(host?.confusion)}, arm64 ${JSON.stringify(arm?.confusion)}`,
    );
  }
  for (const [side, doc] of [
    ['x86', host],
    ['arm64', arm],
  ]) {
    for (const f of doc?.failed ?? []) problems.push(`${side}: ${f.file} failed (${f.kind}): ${f.error}`);
  }
  return {
    ok: problems.length === 0,
    images: host?.n ?? 0,
    accuracy: { x86: host?.accuracy, arm64: arm?.accuracy },
    eceDiff: Math.abs((host?.ece ?? 0) - (arm?.ece ?? 0)),
    executionProvider: arm?.model?.executionProvider,
    precision: arm?.model?.precision,
    problems,
  };
}

/** Probe outputs (probe.mjs): native modules load, same class from both models, diffs. */
export function compareProbe(host, arm) {
  const problems = [];
  const notes = [];
  for (const e of host.errors ?? []) problems.push(`x86: ${e}`);
  for (const e of arm.errors ?? []) problems.push(`arm64: ${e}`);
  if (arm.arch !== 'arm64') problems.push(`the "arm64" probe ran as ${arm.arch}`);
  if (arm.modules?.sqlite && !arm.modules.sqlite.ok) problems.push('arm64: SQLite round trip failed');
  const maxDiff = { int8: 0, fp32: 0 };
  let sameDecode = 0;
  let sameCamera = 0;
  const armByFile = new Map((arm.images ?? []).map((i) => [i.file, i]));
  for (const h of host.images ?? []) {
    const a = armByFile.get(h.file);
    if (!a) {
      problems.push(`${h.file}: missing from the arm64 probe`);
      continue;
    }
    if (h.error || a.error) {
      problems.push(
        `${h.file}: ${h.error ? `x86 ${h.error}` : ''} ${a.error ? `arm64 ${a.error}` : ''}`.trim(),
      );
      continue;
    }
    if (h.decodedSha === a.decodedSha) sameDecode++;
    if (h.cameraPathSha === a.cameraPathSha) sameCamera++;
    for (const kind of ['int8', 'fp32']) {
      if (!h[kind] || !a[kind]) continue;
      if (argmax(h[kind]) !== argmax(a[kind])) {
        problems.push(`${h.file}: ${kind} class ${argmax(h[kind])} on x86, ${argmax(a[kind])} on arm64`);
      }
      for (let i = 0; i < h[kind].length; i++) {
        maxDiff[kind] = Math.max(maxDiff[kind], Math.abs(h[kind][i] - (a[kind][i] ?? NaN)) || 0);
      }
    }
  }
  const n = host.images?.length ?? 0;
  if (n === 0) problems.push('the probe ran on no images');
  // Pixel hashes are notes, not failures: what must agree is the class (checked above).
  const compared = (host.images ?? []).filter((h) => {
    const a = armByFile.get(h.file);
    return a && !a.error && !h.error;
  }).length;
  if (sameDecode < compared)
    notes.push(`decoded pixels differ between x86 and arm64 on ${compared - sameDecode}/${compared} images`);
  if (sameCamera < compared)
    notes.push(`camera-size resize path differs on ${compared - sameCamera}/${compared} images`);
  return { ok: problems.length === 0, images: n, compared, sameDecode, sameCamera, maxDiff, problems, notes };
}

/**
 * MQTT messages captured from the daemon under arm64: at least `expected` result messages, each
 * for a distinct file, each with the class the arm64 evaluate run gave that file (when known).
 */
export function compareMessages(lines, expectedDoc, expected) {
  const problems = [];
  const results = [];
  const topics = new Set();
  for (const line of lines) {
    if (!line.trim()) continue;
    const m = JSON.parse(line);
    topics.add(m.topic.split('/').pop());
    if (!m.topic.endsWith('/result')) continue;
    try {
      results.push(JSON.parse(m.payload));
    } catch {
      problems.push(`unparseable result payload on ${m.topic}`);
    }
  }
  const files = new Set(results.map((r) => basename(String(r.file ?? ''))));
  if (files.size < expected) problems.push(`${files.size} distinct result messages, expected ${expected}`);
  const reference = expectedDoc ? extractPredictions(expectedDoc) : new Map();
  let checked = 0;
  for (const r of results) {
    const p = predictionOf(r);
    const ref = p && reference.get(basename(p.file));
    if (!p || !ref) continue;
    checked++;
    if (p.cls !== ref.cls) problems.push(`${p.file}: daemon published ${p.cls}, evaluate said ${ref.cls}`);
  }
  return {
    ok: problems.length === 0,
    results: files.size,
    checkedAgainstEvaluate: checked,
    topics: [...topics].sort(),
    problems,
  };
}

function main(argv) {
  const [mode, a, b, c] = argv;
  // A JSON document, or JSON lines (classify --json prints one object per image).
  const readJson = (p) => {
    const text = readFileSync(p, 'utf8');
    try {
      return JSON.parse(text);
    } catch {
      return text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l));
    }
  };
  let result;
  if (mode === 'probe') result = compareProbe(readJson(a), readJson(b));
  else if (mode === 'metrics') result = compareMetrics(readJson(a), readJson(b));
  else if (mode === 'predictions') result = comparePredictions(readJson(a), readJson(b));
  else if (mode === 'messages') {
    const lines = readFileSync(a, 'utf8').split('\n');
    result = compareMessages(lines, b && b !== '-' ? readJson(b) : undefined, Number(c ?? 1));
  } else {
    process.stderr.write('usage: compare.mjs probe|metrics|predictions|messages <files>\n');
    return 2;
  }
  for (const p of result.problems) process.stdout.write(`  MISMATCH ${p}\n`);
  for (const n of result.notes ?? []) process.stdout.write(`  note: ${n}\n`);
  process.stdout.write(`RESULT ${JSON.stringify({ ...result, problems: result.problems.length })}\n`);
  return result.ok ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href)
  process.exitCode = main(process.argv.slice(2));
