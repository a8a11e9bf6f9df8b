/**
 * The capture-folder watcher (see README.md here): createCaptureWatcher offers the pipeline every
 * stable image file in the capture folder.
 */
import type { Logger } from '../log.js';
import type { CandidateSink, CaptureWatcher, CaptureWatcherOptions } from './types.js';
import { CaptureWatcherImpl } from './watcher.js';

export type {
  CandidateFile,
  CandidateSink,
  CaptureWatcher,
  CaptureWatcherOptions,
  WatchStatus,
} from './types.js';
export { createNameFilter, globToRegExp } from './filter.js';

/**
 * Watches the capture folder and offers stable image files to the pipeline.
 *
 * Events (fs.watch per folder through FolderEvents, or chokidar when polling) are only a hint
 * (they miss events under load, after the folder is recreated, and on shares without inotify).
 * The truth is the reconciliation scan at start, every rescanIntervalS and on demand; both feed
 * one stability tracker. A cheap probe (stat + access of the folder) runs more often to notice
 * the folder disappearing, coming back or being replaced, and then re-creates the watcher and
 * scans at once. All folder work (probe, re-arm, scan) runs on
 * one serial chain so two of them never race on the watcher.
 */
export function createCaptureWatcher(
  opts: CaptureWatcherOptions,
  sink: CandidateSink,
  log: Logger,
): CaptureWatcher {
  return new CaptureWatcherImpl(opts, sink, log.child({ module: 'watch' }));
}
