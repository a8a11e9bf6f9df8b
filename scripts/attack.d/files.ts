/**
 * Attempts through the capture folder (only with --capture-dir): hostile files, slow writers,
 * a classified file swapped for a link to a secret, a file overwritten in place, a burst. Every
 * file is named `<run id>-…` so the run finds its own results and removes its files afterwards.
 */
import {
  appendFileSync,
  linkSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { jpegVariant, repoRoot, sampleImages } from '../../test/daemon/helpers.js';
import { ODD_NAMES, pngBomb } from '../../test/reliability/hostile-inputs.js';
import { recentResults, servedOriginal, sha256, waitForResults, type ApiResult } from './api.js';
import { fail, skip, sleep, verdict, type Attempt, type AttackContext } from './attempt.js';

/** How long the file attempts wait for the daemon to settle their files. */
const SETTLE_MS = 40_000;

const samples = () => sampleImages().map((p) => readFileSync(p));

function place(ctx: AttackContext, name: string, bytes: Buffer): string {
  const path = join(ctx.captureDir!, name);
  ctx.created.add(path);
  writeFileSync(path, bytes);
  return path;
}

/**
 * A PNG with a tEXt chunk after IHDR carrying `tag`: the same image, bytes of its own (a result
 * already classified is a duplicate, so every run needs images the installation has not seen).
 */
function pngVariant(png: Buffer, tag: string): Buffer {
  const data = Buffer.from(`Comment\0${tag}`);
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write('tEXt', 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return Buffer.concat([png.subarray(0, 33), chunk, png.subarray(33)]);
}

/** A TIFF with `tag` appended after its last byte: readers follow offsets, so the image is unchanged. */
const tiffVariant = (tiff: Buffer, tag: string) => Buffer.concat([tiff, Buffer.from(`\0${tag}`)]);

/** Classified: screened (`done`) or refused by the out-of-domain gate: either way processed once. */
const isClassified = (status: string): boolean => status === 'done' || status === 'out_of_domain';

/** What a hostile file must come to: classified (`done`), or recorded with a reason of one of these kinds. */
type Expect = 'done' | 'refused' | 'truncated' | 'never-read';

async function hostileSet(
  ctx: AttackContext,
): Promise<Array<[name: string, bytes: Buffer | null, expect: Expect]>> {
  const [good, other] = samples();
  const bad = (f: string) => readFileSync(join(repoRoot, 'test/fixtures/bad', f));
  const bomb = await pngBomb();
  const tagged = (i: number) => jpegVariant(good!, `${ctx.runId}-odd-${i}`);
  const odd = ODD_NAMES;
  return [
    ['empty.jpg', bad('empty.jpg'), 'refused'],
    ['random-bytes.jpg', bad('random-bytes.jpg'), 'refused'],
    ['text-as.png', bad('not-an-image.txt'), 'refused'],
    ['sample.bmp', bad('sample.bmp'), 'refused'],
    ['huge-header.png', bad('huge-header.png'), 'refused'],
    ['bomb.png', bomb, 'refused'],
    ['not-image.tif', Buffer.from('II*\0 certainly not a tiff'), 'refused'],
    ['truncated.jpg', bad('truncated.jpg'), 'truncated'],
    ['cmyk.jpg', jpegVariant(await sharp(good).toColourspace('cmyk').jpeg().toBuffer(), ctx.runId), 'done'],
    [
      'sixteen-bit.png',
      pngVariant(await sharp(other).toColourspace('rgb16').png().toBuffer(), ctx.runId),
      'done',
    ],
    [
      'grey-alpha.png',
      pngVariant(await sharp(good).greyscale().ensureAlpha().png().toBuffer(), ctx.runId),
      'done',
    ],
    [
      'two-pages.tif',
      tiffVariant(readFileSync(join(repoRoot, 'test/fixtures/formats/two-pages.tif')), ctx.runId),
      'done',
    ],
    ...odd.map((n, i): [string, Buffer, Expect] => [n, tagged(i), 'done']),
    ['link-out.jpg', null, 'never-read'],
    ['fine-after.jpg', jpegVariant(other!, `${ctx.runId}-fine-after`), 'done'],
  ];
}

const hostileFiles: Attempt = {
  name: 'hostile-files',
  expects:
    'empty, random, mislabelled, bomb, truncated, CMYK/16-bit/alpha/multi-page, markup and control-character names, a symlink out: each recorded with a reason or classified; the symlink never read; the daemon keeps serving',
  async run(ctx) {
    const set = await hostileSet(ctx);
    const tried = `${set.length} hostile files into the capture folder`;
    const secretDir = mkdtempSync(join(tmpdir(), 'bw-attack-outside-'));
    ctx.created.add(secretDir);
    const secret = jpegVariant(samples()[2]!, `${ctx.runId}-outside-secret`);
    writeFileSync(join(secretDir, 'secret.jpg'), secret);
    for (const [name, bytes] of set) {
      const full = `${ctx.runId}-${name}`;
      if (bytes) place(ctx, full, bytes);
      else {
        ctx.created.add(join(ctx.captureDir!, full));
        symlinkSync(join(secretDir, 'secret.jpg'), join(ctx.captureDir!, full));
      }
    }
    const waitFor = set
      .filter(([, , e]) => e === 'done' || e === 'refused')
      .map(([n]) => `${ctx.runId}-${n}`);
    const rows = await waitForResults(ctx, waitFor, SETTLE_MS);
    const all = await recentResults(ctx);
    const bad: string[] = [];
    const seen: Record<string, number> = {};
    for (const [name, , expect] of set) {
      const got =
        rows.get(`${ctx.runId}-${name}`) ?? all.filter((r) => r.file.endsWith(`${ctx.runId}-${name}`));
      const last = got.at(-1);
      const outcome = last
        ? isClassified(last.status)
          ? 'done'
          : `${last.status}:${last.error_kind ?? ''}`
        : 'no result';
      seen[outcome] = (seen[outcome] ?? 0) + 1;
      const ok =
        expect === 'done'
          ? last !== undefined && isClassified(last.status)
          : expect === 'refused'
            ? last !== undefined && !isClassified(last.status) && (last.error ?? '').length > 3
            : expect === 'truncated'
              ? !last || (!isClassified(last.status) && (last.error_kind ?? 'truncated') === 'truncated')
              : !last && !all.some((r) => r.sha256 === sha256(secret));
      if (!ok) bad.push(`${JSON.stringify(name)} → ${outcome}`);
    }
    const alive = await ctx.target.fetch('/healthz');
    if (alive.status !== 200) bad.push(`/healthz ${alive.status}`);
    const summary = Object.entries(seen)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
    return verdict(
      bad.length === 0,
      tried,
      bad.length === 0 ? `${summary}; /healthz 200` : `wrong: ${bad.join('; ')} (${summary})`,
    );
  },
};

/** Appends `bytes` in `chunks` parts with `pauseMs` between them (a camera writing over a slow share). */
async function slowWrite(
  ctx: AttackContext,
  name: string,
  bytes: Buffer,
  chunks: number,
  pauseMs: number,
): Promise<string[]> {
  const path = place(ctx, name, Buffer.alloc(0));
  const prefixes: string[] = [];
  const step = Math.ceil(bytes.length / chunks);
  for (let off = 0; off < bytes.length; off += step) {
    appendFileSync(path, bytes.subarray(off, off + step));
    if (off + step < bytes.length) {
      prefixes.push(sha256(bytes.subarray(0, off + step)));
      await sleep(pauseMs);
    }
  }
  return prefixes;
}

const slowWriters: Attempt = {
  name: 'slow-writers',
  expects:
    'a JPEG and a TIFF written in 4 chunks with pauses longer than the stability window: one result each, with the final bytes; no prefix ever recorded',
  async run(ctx) {
    const pause = ctx.stabilityMs + 700;
    const tried = `JPEG and LZW TIFF written in 4 chunks, ${pause} ms apart`;
    const [, , , src] = samples();
    const files: Array<[string, Buffer]> = [
      [`${ctx.runId}-slow.jpg`, jpegVariant(src!, `${ctx.runId}-slow`)],
      [
        `${ctx.runId}-slow.tif`,
        tiffVariant(await sharp(src).tiff({ compression: 'lzw' }).toBuffer(), ctx.runId),
      ],
    ];
    const prefixes = (await Promise.all(files.map(([n, b]) => slowWrite(ctx, n, b, 4, pause)))).flat();
    const rows = await waitForResults(
      ctx,
      files.map(([n]) => n),
      SETTLE_MS,
      (r) => isClassified(r.status),
    );
    await sleep(1000); // a prefix recorded late would show up as a second row
    const all = await recentResults(ctx);
    const bad: string[] = [];
    for (const [name, bytes] of files) {
      const got = all.filter((r) => r.file.endsWith(name));
      const want = got.length === 1 && isClassified(got[0]!.status) && got[0]!.sha256 === sha256(bytes);
      if (!want)
        bad.push(
          `${name}: ${got.map((r) => `${r.status}:${r.error_kind ?? ''}${r.sha256 === sha256(bytes) ? '' : ' (other bytes)'}`).join(', ') || 'no result'}`,
        );
    }
    if (all.some((r) => prefixes.includes(r.sha256))) bad.push('a partial prefix was recorded');
    return verdict(
      bad.length === 0 && rows.size === files.length,
      tried,
      bad.length === 0 ? 'one done result each, final bytes' : bad.join('; '),
    );
  },
};

/** Writes a fresh image, waits for its done result, and returns it with the bytes. */
async function classified(ctx: AttackContext, name: string, bytes: Buffer): Promise<ApiResult | null> {
  place(ctx, name, bytes);
  const rows = await waitForResults(
    ctx,
    [name],
    SETTLE_MS,
    (r) => isClassified(r.status) && r.sha256 === sha256(bytes),
  );
  return rows.get(name)?.find((r) => r.sha256 === sha256(bytes)) ?? null;
}

/** The image route's answer for an old result after its file changed: gone, or the classified bytes. */
function judgeServed(
  r: ApiResult,
  served: { status: number; sha: string },
  forbidden: Buffer,
): [boolean, string] {
  const leaked = served.sha === sha256(forbidden);
  const ok =
    served.status === 404 || served.status === 410 || (served.status === 200 && served.sha === r.sha256);
  const what = leaked
    ? "the new file's bytes"
    : served.sha === r.sha256
      ? 'the classified bytes'
      : 'other bytes';
  return [ok && !leaked, `image route ${served.status}${served.status === 200 ? ` with ${what}` : ''}`];
}

function swapAttempt(kind: 'symlink' | 'hardlink'): Attempt {
  return {
    name: `${kind}-swap`,
    expects: `a classified file replaced by a ${kind} to a secret: the image route answers 404/410 or the classified bytes (sha256), never the linked file`,
    async run(ctx) {
      const name = `${ctx.runId}-swap-${kind}.jpg`;
      const tried = `classify ${name}, then replace it by a ${kind} to a secret ${kind === 'symlink' ? 'outside' : 'inside'} the folder`;
      const r = await classified(ctx, name, jpegVariant(samples()[4]!, `${ctx.runId}-${kind}`));
      if (!r) return fail(tried, 'the original was not classified within 40 s');
      const secret = Buffer.from(`BLASTWATCH-ATTACK-SECRET ${ctx.runId} ${kind}\n`.repeat(40));
      const path = join(ctx.captureDir!, name);
      try {
        if (kind === 'symlink') {
          const outside = mkdtempSync(join(tmpdir(), 'bw-attack-secret-'));
          ctx.created.add(outside);
          writeFileSync(join(outside, 'secret.txt'), secret);
          unlinkSync(path);
          symlinkSync(join(outside, 'secret.txt'), path);
        } else {
          const inside = place(ctx, `${ctx.runId}-secret.txt`, secret);
          unlinkSync(path);
          linkSync(inside, path);
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // capture.move_processed_to moved the file away; a share without links cannot be attacked so.
        if (code === 'ENOENT')
          return skip(tried, 'the classified file was moved away (capture.move_processed_to)');
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EXDEV')
          return skip(tried, `the capture folder does not take ${kind}s (${code})`);
        throw err;
      }
      await sleep(300);
      const served = await servedOriginal(ctx, r.id);
      const [ok, said] = judgeServed(r, served, secret);
      return verdict(ok, tried, `result #${r.id}: ${said}`);
    },
  };
}

const overwriteOldResult: Attempt = {
  name: 'overwrite-old-result',
  expects:
    "a file overwritten in place: the old result's image is 404/410 or its classified bytes, never the newer image",
  async run(ctx) {
    const name = `${ctx.runId}-overwrite.jpg`;
    const tried = `classify ${name}, overwrite it with another image, fetch the first result's image`;
    const [a, b] = [
      jpegVariant(samples()[5]!, `${ctx.runId}-ow-a`),
      jpegVariant(samples()[8]!, `${ctx.runId}-ow-b`),
    ];
    const first = await classified(ctx, name, a);
    if (!first) return fail(tried, 'the first version was not classified within 40 s');
    const second = await classified(ctx, name, b);
    const served = await servedOriginal(ctx, first.id);
    const [ok, said] = judgeServed(first, served, b);
    return verdict(
      ok,
      tried,
      `second version ${second ? `#${second.id}` : 'not classified'}; result #${first.id}: ${said}`,
    );
  },
};

const burst: Attempt = {
  name: 'burst',
  expects: 'N images at once (--burst): every one classified once, /healthz answering within 5 s throughout',
  async run(ctx) {
    const n = ctx.burst;
    const tried = `${n} images written at once`;
    if (n <= 0) return skip(tried, '--burst 0');
    const imgs = samples();
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = `${ctx.runId}-burst-${String(i).padStart(4, '0')}.jpg`;
      place(ctx, name, jpegVariant(imgs[i % imgs.length]!, `${ctx.runId}-burst-${i}`));
      names.push(name);
    }
    let worst = 0;
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const t0 = Date.now();
        const s = await ctx.target.fetch('/healthz', {}, 5000).then(
          (r) => r.status,
          () => 0,
        );
        worst = Math.max(worst, s === 200 ? Date.now() - t0 : 5000);
        await sleep(500);
      }
    })();
    const t0 = Date.now();
    const rows = await waitForResults(ctx, names, SETTLE_MS + 20_000, (r) => isClassified(r.status));
    probing = false;
    await probe;
    const done = names.filter((x) => rows.get(x)?.some((r) => isClassified(r.status))).length;
    const doubled = names.filter((x) => (rows.get(x)?.length ?? 0) > 1).length;
    return verdict(
      done === n && doubled === 0 && worst < 5000,
      tried,
      `${done}/${n} done in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${doubled} doubled, slowest /healthz ${worst} ms`,
    );
  },
};

/** The capture-folder attempts, run concurrently with the HTTP ones. */
export const fileAttempts: Attempt[] = [
  hostileFiles,
  slowWriters,
  swapAttempt('symlink'),
  swapAttempt('hardlink'),
  overwriteOldResult,
  burst,
];

/** Wraps a capture-folder attempt: SKIP without a writable --capture-dir. */
export function needsCaptureDir(a: Attempt): Attempt {
  return {
    ...a,
    run: (ctx) =>
      ctx.captureDir ? a.run(ctx) : Promise.resolve(skip(a.expects, 'needs --capture-dir (writable)')),
  };
}
