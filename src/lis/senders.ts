import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LisMessage } from './outbox.js';

/**
 * What became of one attempt: delivered; held (the receiver refused this message: sending it
 * again unchanged would be refused again, so a person decides); retry (the receiver was not
 * reached or did not answer: try again after a backoff).
 */
export type SendOutcome =
  { kind: 'delivered' } | { kind: 'held'; error: string } | { kind: 'retry'; error: string };

/** One destination's transport. */
export interface Sender {
  /** Where it sends, for the status page (no secrets). */
  readonly target: string;
  /** The last attempt reached the receiver (null before the first attempt). */
  readonly connected: boolean | null;
  send(message: LisMessage, payload: string): Promise<SendOutcome>;
  close(): void;
}

/**
 * Writes `<name>` into a folder atomically: a hidden temporary file, fsync, rename, fsync of the
 * folder. A poller never sees half a file, and a power cut leaves either no file or the whole one.
 * The folder is not created: a share that is not mounted must not turn into a local folder
 * nobody reads.
 */
export async function writeFileAtomically(dir: string, name: string, text: string): Promise<void> {
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  const handle = await open(tmp, 'w', 0o640);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, join(dir, name));
  const folder = await open(dir, 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/** Files for interface middleware to poll; a folder problem (missing share, full disk) is retried. */
export class FolderSender implements Sender {
  private reached: boolean | null = null;

  constructor(
    private readonly dir: string,
    private readonly fileName: (message: LisMessage) => string,
  ) {
    this.target = dir;
  }

  readonly target: string;

  get connected(): boolean | null {
    return this.reached;
  }

  async send(message: LisMessage, payload: string): Promise<SendOutcome> {
    try {
      await writeFileAtomically(this.dir, this.fileName(message), payload);
      this.reached = true;
      return { kind: 'delivered' };
    } catch (err) {
      this.reached = false;
      const e = err as NodeJS.ErrnoException;
      return { kind: 'retry', error: `cannot write to ${this.dir}: ${e.code ?? ''} ${e.message}`.trim() };
    }
  }

  close(): void {}
}

export interface FhirTarget {
  baseUrl: string;
  token: string | null;
  timeoutMs: number;
}

/** Statuses worth retrying: the server is busy, overloaded or timed out, not refusing the content. */
const TRANSIENT_HTTP = new Set([408, 425, 429]);

/** The server's own words from an OperationOutcome, else the start of its body. */
function describeRefusal(status: number, body: string): string {
  try {
    const outcome = JSON.parse(body) as { issue?: { diagnostics?: string; details?: { text?: string } }[] };
    const words = (outcome.issue ?? [])
      .map((i) => i.diagnostics ?? i.details?.text)
      .filter((s): s is string => typeof s === 'string' && s !== '');
    if (words.length > 0) return `FHIR server answered ${status}: ${words.join('; ').slice(0, 500)}`;
  } catch {
    // not JSON: quote the text
  }
  const text = body.replace(/\s+/g, ' ').trim().slice(0, 300);
  return `FHIR server answered ${status}${text ? `: ${text}` : ''}`;
}

/** A transaction Bundle POSTed to the server's base URL (FHIR R4 RESTful API, "transaction"). */
export class FhirSender implements Sender {
  private reached: boolean | null = null;

  constructor(private readonly fhir: FhirTarget) {
    this.target = fhir.baseUrl;
  }

  readonly target: string;

  get connected(): boolean | null {
    return this.reached;
  }

  async send(_message: LisMessage, payload: string): Promise<SendOutcome> {
    const headers: Record<string, string> = {
      'content-type': 'application/fhir+json; charset=utf-8',
      accept: 'application/fhir+json',
    };
    if (this.fhir.token) headers.authorization = `Bearer ${this.fhir.token}`;
    let response: Response;
    let body: string;
    try {
      response = await fetch(this.fhir.baseUrl, {
        method: 'POST',
        headers,
        body: payload,
        signal: AbortSignal.timeout(this.fhir.timeoutMs),
      });
      body = await response.text();
    } catch (err) {
      this.reached = false;
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why =
        e.name === 'TimeoutError'
          ? `no answer within ${this.fhir.timeoutMs} ms`
          : (e.cause?.message ?? e.message);
      return { kind: 'retry', error: `cannot reach the FHIR server: ${why}` };
    }
    this.reached = true;
    if (response.ok) return { kind: 'delivered' };
    const error = describeRefusal(response.status, body);
    if (response.status >= 500 || TRANSIENT_HTTP.has(response.status)) return { kind: 'retry', error };
    return { kind: 'held', error };
  }

  close(): void {}
}
