// Reading an image for the dashboard: links refused, other bytes refused, FIFOs and oversized
// files refused without hanging or reading them, the classified bytes returned.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readImageFile } from '../../src/serve/dashboard/image-file.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('readImageFile', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bw-image-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const real = join(dir, 'real-root');
  mkdirSync(join(real, 'slide'), { recursive: true });
  const bytes = Buffer.from('the classified bytes');
  const path = join(real, 'slide', 'a.jpg');
  writeFileSync(path, bytes);
  const secret = join(dir, 'secret.yml');
  writeFileSync(secret, 'auth_token: secret');
  const opts = { roots: [real], sha256: sha(bytes), maxBytes: 1024 };

  const ok = await readImageFile(path, opts);
  t.ok(ok.ok && ok.bytes.equals(bytes), 'the classified bytes');

  t.match(await readImageFile(join(real, 'missing.jpg'), opts), { ok: false, status: 404 });
  writeFileSync(join(real, 'other.jpg'), 'other bytes');
  t.match(await readImageFile(join(real, 'other.jpg'), opts), {
    ok: false,
    status: 410,
    error: /changed on disk after it was classified \(its bytes differ\)/,
  });
  t.match(
    await readImageFile(join(real, 'other.jpg'), { ...opts, sha256: null }),
    { ok: true },
    'media: no hash',
  );

  symlinkSync(path, join(real, 'link.jpg'));
  t.match(
    await readImageFile(join(real, 'link.jpg'), opts),
    { ok: false, status: 410, error: /now a link/ },
    'a symlink is not followed, even to the right bytes',
  );
  linkSync(secret, join(real, 'hard.jpg'));
  t.match(
    await readImageFile(join(real, 'hard.jpg'), opts),
    { ok: false, status: 410 },
    'a hard link to other bytes',
  );

  execFileSync('mkfifo', [join(real, 'fifo.jpg')]);
  t.match(
    await readImageFile(join(real, 'fifo.jpg'), { ...opts, sha256: null }),
    { ok: false, status: 410, error: /no longer a regular file/ },
    'a FIFO neither hangs nor is read',
  );
  writeFileSync(join(real, 'big.jpg'), Buffer.alloc(2048));
  t.match(
    await readImageFile(join(real, 'big.jpg'), { ...opts, sha256: null }),
    { ok: false, status: 410, error: /larger/ },
    'a file above maxBytes is not read',
  );

  // The root configured as a link (a share mounted elsewhere), paths recorded under its real
  // path: a folder swapped for a link below it is still refused.
  const configured = join(dir, 'captures');
  symlinkSync(real, configured);
  t.match(await readImageFile(path, { ...opts, roots: [configured] }), { ok: true }, 'a linked root is fine');
  const elsewhere = join(dir, 'elsewhere');
  mkdirSync(elsewhere);
  writeFileSync(join(elsewhere, 'a.jpg'), bytes);
  symlinkSync(elsewhere, join(real, 'slide-link'));
  t.match(await readImageFile(join(real, 'slide-link', 'a.jpg'), { ...opts, roots: [configured] }), {
    ok: false,
    status: 410,
    error: /folder on its path is now a link/,
  });
  t.match(await readImageFile(join(configured, 'slide-link', 'a.jpg'), { ...opts, roots: [configured] }), {
    ok: false,
    status: 410,
    error: /folder on its path is now a link/,
  });
});
