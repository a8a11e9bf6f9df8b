/**
 * The watcher's contract with the daemon. The daemon codes against these names: change them only
 * together with src/daemon.
 */

export interface CaptureWatcherOptions {
  /** The capture folder. Resolved to its real path at every probe (it may be a symlink or a mount). */
  dir: string;
  /** Also watch and scan sub-folders. */
  recursive: boolean;
  /** Image extensions such as `.jpg`, matched case-insensitively. */
  extensions: string[];
  /** Name patterns to ignore (files and folders): `*`, `?` and literal characters, case-insensitive. */
  ignore: string[];
  /** Poll instead of inotify: required for SMB/NFS shares, which deliver no events. */
  usePolling: boolean;
  pollIntervalMs: number;
  /** A file is a candidate once size, mtime, inode and ctime are unchanged across this window. */
  stabilityMs: number;
  /** Full reconciliation scan period. */
  rescanIntervalS: number;
  /**
   * The folder must be a mount point (capture.require_mount): when it is not (a share not mounted,
   * or unmounted at run time) it is unavailable like a missing folder instead of looking empty.
   */
  requireMount?: boolean;
  /**
   * How often the folder itself is checked (exists, readable, same inode, mounted when required):
   * how soon a vanished, replaced or unmounted folder is noticed. Default min(rescanIntervalS,
   * 5 s); each probe is a realpath, a stat and an access call, so a shorter period is cheap.
   */
  dirProbeIntervalMs?: number;
  /**
   * Files waiting out their stability window before a scan pauses for the queue to drain: bounds
   * the watcher's memory on a huge backlog (default 4096; lower it on a small device).
   */
  maxPendingStability?: number;
}

export interface CandidateFile {
  /** Absolute real path, inside the real path of the capture folder. */
  path: string;
  /** `path` relative to the real capture folder, with the platform separator. */
  relPath: string;
  size: number;
  mtimeMs: number;
  /**
   * Inode and change time complete the identity: a file replaced with the same size by a tool that
   * keeps the mtime (rsync -t, cp -p) still changes the ctime (utimes cannot set it back), and
   * gets a new inode when renamed into place.
   */
  ino: number;
  ctimeMs: number;
}

export interface CandidateSink {
  /** Called once per stable file per observation (the scan re-emits: the caller dedupes). Must not throw. */
  onCandidate(file: CandidateFile): void;
}

export interface WatchStatus {
  running: boolean;
  /** The folder exists, is a directory and is readable (and is a mount point when required). */
  dirAvailable: boolean;
  /** Epoch ms of the last completed reconciliation scan. */
  lastScanAt: number | null;
  lastError: string | null;
  /** Files seen but not yet stable. */
  pendingStability: number;
}

export interface CaptureWatcher {
  /** Probes the folder, arms chokidar and walks the folder once; never rejects for folder trouble. */
  start(): Promise<void>;
  /** Closes the chokidar watcher, timers and any scan in progress; emits nothing afterwards. */
  stop(): Promise<void>;
  /** Runs a reconciliation scan now (coalesced with one already queued); resolves when the walk ends. */
  rescan(): Promise<void>;
  status(): WatchStatus;
}
