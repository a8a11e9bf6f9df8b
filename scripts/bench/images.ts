/**
 * The benchmark's inputs: real smear images from a folder, their camera-size versions, and
 * byte-unique copies for the daemon (which skips bytes it has already classified).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';

export interface BenchImage {
  name: string;
  bytes: Buffer;
}

const IMAGE_EXT = /\.(jpe?g|png|tiff?)$/i;

/** Image files under `dir` (one level of class folders or flat), sorted, at most `limit`, spread over classes. */
export function loadImages(dir: string, limit: number): BenchImage[] {
  const byFolder = new Map<string, string[]>();
  const walk = (d: string, depth: number): void => {
    for (const entry of readdirSync(d).sort()) {
      const p = join(d, entry);
      const st = statSync(p);
      if (st.isDirectory() && depth < 2) walk(p, depth + 1);
      else if (st.isFile() && IMAGE_EXT.test(entry)) {
        const list = byFolder.get(d) ?? [];
        list.push(p);
        byFolder.set(d, list);
      }
    }
  };
  walk(dir, 0);
  // Round-robin over the class folders so a small N still covers every class.
  const lists = [...byFolder.values()];
  const picked: string[] = [];
  for (let i = 0; picked.length < limit; i++) {
    let any = false;
    for (const list of lists) {
      if (i < list.length && picked.length < limit) {
        picked.push(list[i]!);
        any = true;
      }
    }
    if (!any) break;
  }
  return picked.map((p) => ({ name: p.slice(dir.length + 1).replaceAll('/', '_'), bytes: readFileSync(p) }));
}

/**
 * The camera's format: the Zeiss camera of the original data set writes 1024×768 JPEG. The data
 * set was squashed to 224×224, so the samples are stretched back to 4:3 and re-encoded (quality
 * 92, 4:2:0); decoding them costs what decoding a real capture costs.
 */
export async function toCameraSize(images: BenchImage[], width = 1024, height = 768): Promise<BenchImage[]> {
  return Promise.all(
    images.map(async (img) => ({
      name: img.name.replace(IMAGE_EXT, '') + `-${width}x${height}.jpg`,
      bytes: await sharp(img.bytes)
        .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
        .jpeg({ quality: 92 })
        .toBuffer(),
    })),
  );
}

/**
 * A copy of a JPEG with a unique comment (COM segment right after SOI): same pixels, different
 * bytes, so the daemon (which dedupes on sha256) classifies every dropped file.
 */
export function uniqueJpeg(jpeg: Buffer, tag: string): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('uniqueJpeg: not a JPEG');
  const text = Buffer.from(`blastwatch-benchmark ${tag}`, 'latin1');
  const header = Buffer.from([0xff, 0xfe, ((text.length + 2) >> 8) & 0xff, (text.length + 2) & 0xff]);
  return Buffer.concat([jpeg.subarray(0, 2), header, text, jpeg.subarray(2)]);
}
