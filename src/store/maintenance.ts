import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Extension } from '../runtime/extension.js';
import type { Store } from './index.js';

/**
 * Periodic upkeep on `data.maintenance_interval_s`: retention (rows, pictures, expired
 * uploads) and a truncating WAL checkpoint. Runs once at start. `afterEach` lets the composition
 * root refresh what depends on disk space (the pipeline's disk guard).
 */
export function createMaintenance(
  store: Store,
  config: Config['data'],
  log: Logger,
  afterEach: () => void = () => undefined,
): Extension & { runOnce(): void } {
  let timer: NodeJS.Timeout | null = null;
  const runOnce = () => {
    try {
      const removed = store.retention.run({
        days: config.retention_days,
        maxRows: config.retention_max_rows,
      });
      if (removed) log.info({ removed }, 'retention: old results removed');
      const cp = store.checkpoint();
      store.media.upkeep();
      if (cp.busy) log.debug({ cp }, 'checkpoint could not finish (readers active)');
      afterEach();
    } catch (err) {
      log.warn({ err }, 'maintenance failed');
    }
  };
  return {
    name: 'maintenance',
    runOnce,
    start() {
      runOnce();
      timer = setInterval(runOnce, config.maintenance_interval_s * 1000);
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
