/**
 * Reuse of the two float tensors every image needs (2 × 3 × 224 × 224 floats = 1.2 MB). They are
 * transferred to the inference worker, which transfers them back with the result; taking them from
 * here instead of allocating spares the allocator and the garbage collector 1.2 MB per image, and
 * the worker no longer holds tensors it has finished with until its (rare) next collection.
 */
const MAX_PER_LENGTH = 8;
const free = new Map<number, Float32Array[]>();

/** A Float32Array of exactly `length` values, recycled when one is free (contents undefined). */
export function takeTensor(length: number): Float32Array {
  return free.get(length)?.pop() ?? new Float32Array(length);
}

/**
 * Offers an array nobody uses any more for reuse. Only arrays that own their whole buffer are
 * kept: a view into a shared buffer would be transferred, and detached, with its neighbours.
 */
export function recycleTensor(a: Float32Array): void {
  if (a.byteOffset !== 0 || a.buffer.byteLength !== a.byteLength || a.length === 0) return;
  let list = free.get(a.length);
  if (!list) free.set(a.length, (list = []));
  if (list.length < MAX_PER_LENGTH && !list.includes(a)) list.push(a);
}
