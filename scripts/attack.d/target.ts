/**
 * The one door to the network: every request goes to the installation's base URL (a path is
 * appended, never a host), with a timeout. Nothing in the attack script builds another URL.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Per-request limit: a request that hangs is a finding, not a reason to hang the run. */
export const REQUEST_TIMEOUT_MS = 8_000;

export interface Reply {
  status: number;
  headers: Headers;
  body: string;
  bytes: Buffer;
}

/** Hosts that are this machine: the only ones reachable without --i-own-this-host. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Parses and checks the target: http(s) only, no path/query/credentials (so a typo cannot send
 * traffic elsewhere), loopback unless the operator says they own the host.
 */
export function checkTarget(raw: string, ownHost: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`--url ${raw}: not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error('--url must be http:// or https://');
  if (url.username || url.password) throw new Error('--url must not carry credentials (use --token)');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash)
    throw new Error('--url is the server root only, e.g. http://192.168.1.20:8080');
  if (!isLoopbackHost(url.hostname) && !ownHost)
    throw new Error(
      `refusing to attack ${url.host}: not this machine. Pass --i-own-this-host if it is your own installation.`,
    );
  return new URL(url.origin);
}

export class Target {
  /** Requests sent so far (reported at the end). */
  sent = 0;
  constructor(readonly base: URL) {}

  /** `path` must start with '/': it is appended to the base origin, never resolved as a URL. */
  url(path: string): string {
    if (!path.startsWith('/') || path.startsWith('//')) throw new Error(`not a path: ${path}`);
    return `${this.base.origin}${path}`;
  }

  /** One request with a timeout; the body is read fully (bounded by the timeout too). */
  async fetch(path: string, init: RequestInit = {}, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Reply> {
    this.sent++;
    const res = await fetch(this.url(path), {
      redirect: 'manual',
      ...init,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, body: bytes.toString('utf8'), bytes };
  }

  /**
   * A raw request for what fetch() normalises away: a path sent byte for byte (traversal
   * encodings), or a body cut off mid-way. Resolves with the status, or 0 when the server hung up.
   */
  raw(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: Buffer,
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<{ status: number; body: string }> {
    this.url(path);
    this.sent++;
    return new Promise((resolve) => {
      const send = this.base.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(
        {
          host: this.base.hostname.replace(/^\[|\]$/g, ''),
          port: this.base.port || (this.base.protocol === 'https:' ? 443 : 80),
          method,
          path,
          headers,
          timeout: timeoutMs,
        },
        (res: IncomingMessage) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text.length < 1_000_000 ? (text += d) : undefined));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on('error', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve({ status: 0, body: '' }));
      if (body) req.write(body);
      // A body shorter than its content-length: end the write side, the server waits or refuses.
      req.end();
    });
  }

  /**
   * Opens a Server-Sent Events stream; `ended` resolves when the server closes it. The caller
   * must call close(). Resolves with the status when the response starts.
   */
  async stream(path: string, headers: Record<string, string>): Promise<LiveStream> {
    this.sent++;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), REQUEST_TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(this.url(path), { headers, signal: ac.signal });
    } finally {
      clearTimeout(timer);
    }
    let endedAt: number | null = null;
    const ended = (async () => {
      try {
        const reader = res.body?.getReader();
        if (!reader) return;
        for (;;) {
          const { done } = await reader.read();
          if (done) break;
        }
      } catch {
        /* aborted by us or reset by the server: both end the stream */
      }
      endedAt = Date.now();
    })();
    return {
      status: res.status,
      ended,
      get endedAt() {
        return endedAt;
      },
      close: () => ac.abort(),
    };
  }
}

export interface LiveStream {
  status: number;
  ended: Promise<void>;
  readonly endedAt: number | null;
  close(): void;
}
