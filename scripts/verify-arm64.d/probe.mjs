#!/usr/bin/env node
/**
 * Native-module probe for scripts/verify-arm64. Runs twice — on the x86 host and inside the
 * arm64 root under qemu — from a folder whose node_modules holds blastwatch's production
 * dependencies, and prints one JSON object. The script compares the two objects.
 *
 * It exercises exactly the parts that differ between architectures: the three native modules
 * (sharp/libvips, onnxruntime-node, better-sqlite3) and the numeric paths they take (JPEG decode,
 * resize, INT8 and FP32 inference). It needs none of blastwatch's own commands, so it works
 * before they exist and tells "a native module is broken on arm64" apart from "the CLI is".
 *
 * usage: node probe.mjs <model dir with model.json> <image>...
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';

const [modelDir, ...images] = process.argv.slice(2);
if (!modelDir || images.length === 0) {
  process.stderr.write('usage: node probe.mjs <model dir> <image>...\n');
  process.exit(2);
}

const report = { arch: process.arch, node: process.version, modules: {}, images: [], errors: [] };
const sha = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 16);

// better-sqlite3: compiled from source on arm64 when no prebuild can be fetched. A file database
// in WAL mode with synchronous=FULL is what the daemon's store uses.
try {
  const { default: Database } = await import('better-sqlite3');
  const dir = mkdtempSync(join(tmpdir(), 'bw-probe-'));
  const db = new Database(join(dir, 'probe.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  db.prepare('INSERT INTO t (v) VALUES (?)').run('arm64');
  const row = db.prepare('SELECT v FROM t').get();
  report.modules.sqlite = {
    version: db.prepare('SELECT sqlite_version() AS v').get().v,
    journal: db.pragma('journal_mode', { simple: true }),
    ok: row.v === 'arm64',
  };
  db.close();
  rmSync(dir, { recursive: true, force: true });
} catch (err) {
  report.errors.push(`better-sqlite3: ${err.message}`);
}

let sharp;
try {
  sharp = (await import('sharp')).default;
  sharp.cache(false);
  report.modules.sharp = { versions: sharp.versions };
} catch (err) {
  report.errors.push(`sharp: ${err.message}`);
}

let ort;
try {
  ort = await import('onnxruntime-node');
  report.modules.onnxruntime = {
    version: ort.env?.versions?.common ?? 'unknown',
    backends: ort.listSupportedBackends ? ort.listSupportedBackends().map((b) => b.name) : undefined,
  };
} catch (err) {
  report.errors.push(`onnxruntime-node: ${err.message}`);
}

/** NCHW float32 in [0,1] from 224×224 RGB bytes: the model's documented input scaling. */
function toTensorData(rgb, size) {
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = rgb[3 * i] / 255;
    out[plane + i] = rgb[3 * i + 1] / 255;
    out[2 * plane + i] = rgb[3 * i + 2] / 255;
  }
  return out;
}

if (sharp && ort) {
  const meta = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8'));
  const sessions = {};
  for (const kind of ['int8', 'fp32']) {
    const file = meta.files?.[kind]?.path;
    if (!file) continue;
    try {
      // One intra-op thread: the result must not depend on how the work is split.
      sessions[kind] = await ort.InferenceSession.create(join(modelDir, file), {
        executionProviders: ['cpu'],
        intraOpNumThreads: 1,
      });
    } catch (err) {
      report.errors.push(`onnxruntime ${kind} session: ${err.message}`);
    }
  }
  for (const image of images) {
    const entry = { file: basename(image) };
    try {
      const started = performance.now();
      // Decoded bytes (JPEG IDCT + chroma upsampling, SIMD on both architectures): the model input.
      const rgb = await sharp(image).removeAlpha().resize(224, 224, { fit: 'fill' }).raw().toBuffer();
      entry.decodedSha = sha(rgb);
      // The camera path: a 1024×768 JPEG (the Zeiss camera's size) squashed back to 224×224
      // exercises libvips' JPEG encoder and its SIMD resize kernels.
      const camera = await sharp(rgb, { raw: { width: 224, height: 224, channels: 3 } })
        .resize(1024, 768, { fit: 'fill' })
        .jpeg({ quality: 90 })
        .toBuffer();
      const squashed = await sharp(camera).resize(224, 224, { fit: 'fill' }).raw().toBuffer();
      entry.cameraPathSha = sha(squashed);
      const data = toTensorData(rgb, 224);
      for (const [kind, session] of Object.entries(sessions)) {
        const feeds = {};
        for (const name of session.inputNames) {
          // The probe feeds the same pixels to both inputs: it checks the arithmetic, not the model.
          feeds[name] = new ort.Tensor('float32', data, [1, 3, 224, 224]);
        }
        const out = await session.run(feeds);
        const first = out[session.outputNames[0]];
        entry[kind] = Array.from(first.data, (v) => Number(v));
      }
      entry.ms = Math.round(performance.now() - started);
    } catch (err) {
      entry.error = err.message;
    }
    report.images.push(entry);
  }
}

process.stdout.write(`${JSON.stringify(report)}\n`);
