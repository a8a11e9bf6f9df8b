/**
 * How the composition root (src/app.ts) wires specimens: the store's rule and change feed, the
 * pipeline's in-transaction assignment, and the bus event that tells the dashboard.
 */
import type { ResolvedConfig } from './config/load.js';
import type { RaisedCameraWarning } from './domain/camera-warning.js';
import type { Result } from './domain/result.js';
import { assignmentHint, compileAccessionPattern } from './domain/specimen-assignment.js';
import type { WorkItem } from './domain/work-item.js';
import type { Logger } from './log.js';
import { specimenMessages } from './publish/specimen-payload.js';
import type { EventBus } from './runtime/events.js';
import type { SpecimenStoreOptions, Store } from './store/index.js';

/** The verdict rule from `specimen.rule`, the device id, and the change feed when MQTT is on. */
export function specimenStoreOptions(config: ResolvedConfig): SpecimenStoreOptions {
  const rule = config.specimen.rule;
  return {
    rule: {
      minScreened: rule.min_screened,
      minFlagged: rule.min_flagged,
      minFlaggedShare: rule.min_flagged_share,
    },
    deviceId: config.device_id,
    // No change-feed rows when MQTT is off: nothing would ever drain them.
    changeMessages: config.mqtt.url === null ? null : specimenMessages(config.device_id),
  };
}

/**
 * Each new result joins its specimen inside the result's own transaction (config `specimen`). The
 * assignment runs in a savepoint: should it ever fail, the result is still stored (unassigned,
 * where a user can assign it) rather than lost with it.
 */
export function specimenAssignment(config: ResolvedConfig, store: Store, log: Logger) {
  const pattern =
    config.specimen.pattern === null ? undefined : compileAccessionPattern(config.specimen.pattern);
  const assign = store.db.transaction(
    (result: Result, item: WorkItem) =>
      store.specimens.assignNewResult(result, assignmentHint(item, config.specimen, pattern))?.outbox ?? [],
  );
  return (result: Result, item: WorkItem) => {
    try {
      return assign(result, item);
    } catch (err) {
      store.noteFailure(err);
      log.error(
        { err, id: result.id, file: item.relPath },
        'could not assign the image to its specimen (left unassigned)',
      );
      return [];
    }
  };
}

/**
 * What happens on the bus when an image is stored. A capture moves health's camera watches: the
 * store keeps which are raised (src/store/camera-warnings.ts), and one raised anew counts the
 * earlier captures of the window it was judged on under it, in their specimens. A capture that
 * joins a specimen is counted under the warnings raised now: health clears them once the camera is
 * right again, maybe before anyone opens the specimen. Then the dashboard hears of each specimen
 * that changed (its own writes announce themselves), which so already carries them.
 * `cameraWarnings` is first called when an image is stored, so the composition root may pass
 * health before creating it.
 */
export function specimenEvents(
  store: Store,
  bus: EventBus,
  cameraWarnings: () => RaisedCameraWarning[],
): void {
  bus.on('result:stored', ({ result, created }) => {
    if (!created) return;
    const specimenId = store.specimens.specimenIdOf(result.id);
    const changed = new Set<number>(specimenId === undefined ? [] : [specimenId]);
    try {
      // The watches judge the microscope's camera; a photo uploaded from a phone is not its picture.
      if (result.origin !== 'capture') return;
      const warnings = cameraWarnings();
      const at = Date.now();
      for (const id of store.cameraWarnings.raised(warnings, result.id, at)) changed.add(id);
      if (specimenId !== undefined && warnings.length > 0)
        store.cameraWarnings.note(specimenId, warnings, at);
    } finally {
      for (const id of changed) bus.emit('specimen:changed', { specimenId: id });
    }
  });
}
