/**
 * A part of the daemon with a lifetime of its own (MQTT publisher, maintenance, the HTTP server):
 * the composition root (src/app.ts) creates the extensions, starts them in order and stops them
 * in reverse order.
 */
export interface Extension {
  name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}
