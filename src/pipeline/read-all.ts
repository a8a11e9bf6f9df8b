import type { FileHandle } from 'node:fs/promises';

/**
 * The whole file from an open descriptor, as fs.readFile reads it: up to the size fstat gave
 * (bytes appended since are not read; a file cut short gives what is there).
 */
export async function readAll(handle: FileHandle, size: number): Promise<Buffer> {
  if (size === 0) return handle.readFile(); // nothing to size a buffer by: read to the end
  const buffer = Buffer.allocUnsafeSlow(size);
  let filled = 0;
  while (filled < size) {
    const { bytesRead } = await handle.read(buffer, filled, size - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === size ? buffer : buffer.subarray(0, filled);
}
