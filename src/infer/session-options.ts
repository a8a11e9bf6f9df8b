import type { InferenceSession } from 'onnxruntime-node';

/**
 * The onnxruntime session options the daemon runs with. The benchmark and the INT8/FP32 timing
 * script use the same function, so what they measure is what the daemon runs.
 */
export function daemonSessionOptions(
  provider: 'cpu' | 'cuda',
  threads: number,
): InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    intraOpNumThreads: threads,
    // One inference at a time per session; inter-op threads only help parallel branches.
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // Inputs of one fixed shape (an image and its test-time views): the arena and the
    // memory-pattern planner keep buffers sized for peak use for the life of the session and
    // bring no measurable speed at this size (docs/benchmark.md, "Memory").
    enableCpuMemArena: false,
    enableMemPattern: false,
    // Images arrive one at a time, milliseconds apart: spinning intra-op threads between runs
    // burned ~25-30 ms of CPU per image that decode and segmentation needed (docs/benchmark.md).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}
