import type { Config } from './config/schema.js';
import type { Logger } from './log.js';
import type { WorkItem } from './domain/work-item.js';
import type { Extension } from './runtime/extension.js';
import type { EventBus } from './runtime/events.js';
import { createCaptureWatcher, type WatchStatus } from './watch/index.js';

export interface Capture extends Extension {
  readonly started: boolean;
  status(): WatchStatus;
}

/**
 * The capture folder as an extension: the watcher hands stable files to the pipeline, and a
 * reconciliation scan runs again at once when the pipeline had to drop hints (queue full, disk
 * low) and has drained, or when disk space is back, instead of waiting for the periodic scan.
 */
export function createCapture(
  config: Config['capture'],
  deps: { offer: (item: WorkItem) => unknown; bus: EventBus; log: Logger },
): Capture {
  const { bus, log } = deps;
  const watcher = createCaptureWatcher(
    {
      dir: config.dir,
      recursive: config.recursive,
      extensions: config.extensions,
      ignore: config.ignore,
      usePolling: config.use_polling,
      pollIntervalMs: config.poll_interval_ms,
      stabilityMs: config.stability_ms,
      rescanIntervalS: config.rescan_interval_s,
      requireMount: config.require_mount,
      ...(config.dir_probe_interval_ms !== null ? { dirProbeIntervalMs: config.dir_probe_interval_ms } : {}),
    },
    { onCandidate: (file) => void deps.offer({ ...file, origin: 'capture' }) },
    log,
  );
  let started = false;
  let hintsDropped = false;
  const offBus = [
    bus.on('file:dropped', () => (hintsDropped = true)),
    bus.on('pipeline:idle', () => {
      if (!hintsDropped || !started) return;
      hintsDropped = false;
      void watcher.rescan().catch((err: unknown) => log.warn({ err }, 'rescan failed'));
    }),
    bus.on('disk:state', ({ low }) => {
      if (!low && started) void watcher.rescan().catch(() => undefined);
    }),
  ];
  return {
    name: 'capture',
    get started() {
      return started;
    },
    status: () => watcher.status(),
    async start() {
      await watcher.start();
      started = true;
    },
    async stop() {
      for (const off of offBus) off();
      await watcher.stop().catch((err: unknown) => log.warn({ err }, 'watcher stop failed'));
      started = false;
    },
  };
}
