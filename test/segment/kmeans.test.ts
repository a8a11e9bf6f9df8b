import t from 'tap';
import { kmeansBlocks } from '../../src/segment/index.js';
import { kmeansBytes } from '../../src/segment/reference.js';
import { NumpyRandomState } from '../../src/segment/mt19937.js';

function histogramOf(data: Uint8Array): Uint32Array {
  const h = new Uint32Array(256);
  for (const v of data) h[v] = h[v]! + 1;
  return h;
}

/** Deterministic shuffle so pixel order is not sorted (k-means++ samples in pixel order). */
function shuffled(values: number[], seed: number): Uint8Array {
  const out = Uint8Array.from(values);
  let s = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    const tmp = out[i]!;
    out[i] = out[j]!;
    out[j] = tmp;
  }
  return out;
}

t.test('numpy RandomState stream is reproduced (values taken from numpy 1.24)', async (t) => {
  const rs = new NumpyRandomState(0);
  const seeds = Array.from({ length: 3 }, () => rs.randint(2147483647));
  t.same(seeds, [209652396, 398764591, 924231285]);
  const rs2 = new NumpyRandomState(209652396);
  t.equal(rs2.randint(50176), 39148);
  t.equal(rs2.nextDouble(), 0.39643460277998677);
});

t.test('well separated clusters are recovered exactly', async (t) => {
  const values: number[] = [];
  for (const [centre, spread, count] of [
    [40, 2, 400],
    [120, 3, 910],
    [200, 1, 300],
  ] as const) {
    for (let i = 0; i < count; i++) values.push(centre + ((i % (2 * spread + 1)) - spread));
  }
  const data = shuffled(values, 7);
  const { centres, centreOfValue } = kmeansBytes(data, data.length, histogramOf(data), {
    k: 3,
    nInit: 10,
    maxIterations: 300,
    seed: 0,
  });
  const sorted = Array.from(centres).sort((a, b) => a - b);
  t.ok(Math.abs(sorted[0]! - 40) < 1e-9, `centre ${sorted[0]}`);
  t.ok(Math.abs(sorted[1]! - 120) < 1e-9, `centre ${sorted[1]}`);
  t.ok(Math.abs(sorted[2]! - 200) < 1e-9, `centre ${sorted[2]}`);
  t.ok(Math.abs(centreOfValue[118]! - 120) < 1e-9, 'a value maps to its cluster centre');
  t.ok(Number.isNaN(centreOfValue[0]!), 'absent values have no centre');
});

t.test('fewer distinct values than clusters: every value is its own centre', async (t) => {
  const data = shuffled([...Array(50).fill(10), ...Array(70).fill(90)], 3);
  const { centreOfValue } = kmeansBytes(data, data.length, histogramOf(data), {
    k: 7,
    nInit: 10,
    maxIterations: 300,
    seed: 0,
  });
  // ≈ rather than ===: like sklearn, centres are computed on mean-centred data and shifted back.
  t.ok(Math.abs(centreOfValue[10]! - 10) < 1e-9, `centre of 10: ${centreOfValue[10]}`);
  t.ok(Math.abs(centreOfValue[90]! - 90) < 1e-9, `centre of 90: ${centreOfValue[90]}`);
});

t.test('deterministic: the same bytes give the same centres', async (t) => {
  const values: number[] = [];
  for (let i = 0; i < 5000; i++) values.push(100 + Math.round(30 * Math.sin(i * 0.37) * Math.cos(i * 0.011)));
  const data = shuffled(values, 11);
  const opts = { k: 7, nInit: 10, maxIterations: 300, seed: 0 };
  const a = kmeansBytes(data, data.length, histogramOf(data), opts);
  const b = kmeansBytes(data, data.length, histogramOf(data), opts);
  t.same(Array.from(a.centres), Array.from(b.centres));
  t.equal(a.centres.length, 7);
});

t.test('kmeansBlocks on split per-block counts equals kmeansBytes, and reports the histogram', async (t) => {
  const values: number[] = [];
  for (let i = 0; i < 3001; i++) values.push(120 + Math.round(40 * Math.sin(i * 0.13) * Math.cos(i * 0.007)));
  const data = shuffled(values, 5);
  const n = data.length; // 3001: a partial last block
  // rgbToAStar8Counted's layout: even pixels in the first 256 of a block's 512, odd in the second.
  const blockCounts = new Uint8Array(Math.ceil(n / 256) * 512);
  for (let i = 0; i < n; i++) blockCounts[(i >> 8) * 512 + (i & 1) * 256 + data[i]!]!++;
  const hist = histogramOf(data);
  const lowest = hist.findIndex((c) => c > 0);
  const highest = 255 - [...hist].reverse().findIndex((c) => c > 0);
  const opts = { k: 7, nInit: 10, maxIterations: 300, seed: 0 };
  const a = kmeansBytes(data, n, hist, opts);
  const histOut = new Uint32Array(256).fill(9);
  const b = kmeansBlocks(data, n, blockCounts, lowest, highest, opts, undefined, undefined, histOut);
  t.same(Array.from(b.centres), Array.from(a.centres));
  t.equal(b.inertia, a.inertia);
  t.same(histOut, hist);
  // A wrong count must change the sampling (so the test above can fail).
  blockCounts[256 + data[1]!] = blockCounts[256 + data[1]!]! + 100;
  const c = kmeansBlocks(data, n, blockCounts, lowest, highest, opts);
  t.not(Array.from(c.centres).join(), Array.from(a.centres).join());
});
