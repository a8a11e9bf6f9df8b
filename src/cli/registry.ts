import type { Command } from './command.js';

/**
 * Every subcommand, loaded lazily so that `blastwatch segment` does not pay for onnxruntime
 * and `blastwatch check-config` does not load sharp.
 */
export const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  run: {
    summary: 'run the daemon: watch the capture folder, classify, store, publish, serve',
    load: async () => (await import('./commands/run.js')).default,
  },
  'check-config': {
    summary: 'validate a config file (and environment overrides) and print the result',
    load: async () => (await import('./commands/check-config.js')).default,
  },
  segment: {
    summary: 'segment images (LAB a* K-means) and write masks and segmented images',
    load: async () => (await import('./commands/segment.js')).default,
  },
  'preprocess-dataset': {
    summary: 'turn a class-per-folder image set into the tensor cache the training pipeline reads',
    load: async () => (await import('./commands/preprocess-dataset.js')).default,
  },
  classify: {
    summary: 'classify images with the bundled model and print per-class probabilities',
    load: async () => (await import('./commands/classify.js')).default,
  },
  evaluate: {
    summary: "evaluate the model on a class-per-folder image set through the daemon's exact path",
    load: async () => (await import('./commands/evaluate.js')).default,
  },
  backup: {
    summary: 'copy the database and the uploaded photos to a backup folder, also while the daemon runs',
    load: async () => (await import('./commands/backup.js')).default,
  },
  restore: {
    summary: 'put a copy made by blastwatch backup back as the database (the daemon stopped)',
    load: async () => (await import('./commands/restore.js')).default,
  },
  'hash-password': {
    summary: 'make a password hash or a new API token for a dashboard user (http.users in the config)',
    load: async () => (await import('./commands/hash-password.js')).default,
  },
  demo: {
    summary: 'show the whole flow in one command: temp folders, in-process broker, sample images',
    load: async () => (await import('./commands/demo.js')).default,
  },
};
