/**
 * Process-wide settings onnxruntime reads from the environment when it creates its OrtEnv (once
 * per process, in whichever thread opens the first session).
 *
 * Telemetry: the Linux build of onnxruntime-node starts a telemetry client while creating the
 * OrtEnv. It reads /etc/os-release, /etc/machine-id and /proc/self/cmdline and parses the
 * command line with a backtracking std::regex whose recursion depth grows with the length of
 * the command line. The inference worker runs on a 4 MiB thread stack, so a command line of
 * about 16 KB (`blastwatch classify` with a few hundred absolute paths) overflows it and the
 * whole process dies with SIGSEGV; the 8 MiB main thread survives to about twice that. A
 * screening device has no business collecting the machine id and command line anyway.
 * ORT_DISABLE_TELEMETRY=1 (the only value onnxruntime accepts) skips the client entirely.
 */
export function configureOrtEnvironment(): void {
  // Must be the main thread's environment: a worker's process.env is a private copy that native
  // code never sees, and getenv() runs in the thread that creates the OrtEnv.
  process.env.ORT_DISABLE_TELEMETRY = '1';
}
