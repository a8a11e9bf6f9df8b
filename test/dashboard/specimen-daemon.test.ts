/**
 * Specimens in the real daemon (tiny test model, MQTT off): a session started over the API takes
 * the next capture, a phone upload with an accession joins that specimen, the live feed pushes
 * `event: specimen`, and finish → sign → amend work end to end.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startDaemonHarness } from './harness.js';

const TOKEN = 'specimen-daemon-test-token-0123';
const SAMPLES = fileURLToPath(new URL('../fixtures/samples/', import.meta.url));
const sample = (cls: string, i = 0) => {
  const dir = join(SAMPLES, cls);
  return join(
    dir,
    readdirSync(dir)
      .filter((n) => /\.jpe?g$/i.test(n))
      .sort()[i]!,
  );
};

/** multipart/form-data with an `accession` field before the `file` part, as the phone form sends it. */
function uploadBody(accession: string, fileName: string, bytes: Buffer) {
  const boundary = '----blastwatchspecimen' + Math.random().toString(16).slice(2);
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="accession"\r\n\r\n${accession}\r\n`),
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\nContent-Type: image/jpeg\r\n\r\n`,
    ),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

async function openStream(url: string) {
  const controller = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` }, signal: controller.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  void (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) break;
      text += decoder.decode(value);
    }
  })();
  return {
    async waitFor(pattern: RegExp, ms = 10_000) {
      const end = Date.now() + ms;
      while (!pattern.test(text) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return pattern.test(text);
    },
    close: () => controller.abort(),
  };
}

t.test('session, capture, upload with accession, live event, sign, amend', async (t) => {
  const h = await startDaemonHarness({ token: TOKEN });
  t.teardown(() => h.close());
  const api = async (method: string, path: string, body?: object) => {
    const res = await fetch(`${h.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const stream = await openStream(`${h.url}/api/dashboard/events`);
  t.teardown(() => stream.close());

  const started = await api('POST', '/api/specimens', { accession: 'SES-1', reviewer: 'dr-lee' });
  t.equal(started.status, 201);
  const id = started.json.id as number;
  await h.drop(sample('Pro'), 'field-1.jpg');
  t.ok(
    await stream.waitFor(/event: specimen\ndata: \{[^\n]*"accession":"SES-1"[^\n]*"images":1/),
    'live feed: specimen event',
  );
  const detail = await api('GET', `/api/specimens/${id}`);
  t.equal((detail.json.images as unknown[]).length, 1, 'the capture joined the session');

  const { body, contentType } = uploadBody('UP-7', 'phone.jpg', readFileSync(sample('Benign')));
  const up = await fetch(`${h.url}/api/dashboard/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': contentType },
    body,
  });
  t.equal(up.status, 202);
  const uploaded = (await up.json()) as { specimenId?: number };
  t.ok(uploaded.specimenId, 'the upload reply names its specimen');
  const list = (await api('GET', '/api/specimens')).json as unknown as {
    accession: string;
    counts: { images: number };
  }[];
  t.same(
    list.map((s) => [s.accession, s.counts.images]).sort(),
    [
      ['SES-1', 1],
      ['UP-7', 1],
    ],
    'an explicit upload accession wins over the open session',
  );
  const bad = uploadBody('bad name', 'x.jpg', readFileSync(sample('Benign', 1)));
  const refused = await fetch(`${h.url}/api/dashboard/upload`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': bad.contentType },
    body: bad.body,
  });
  t.equal(refused.status, 400, 'an invalid accession is refused');

  t.equal(
    (await api('POST', `/api/specimens/${id}/finish`, { reviewer: 'dr-lee' })).json.status,
    'awaiting_signoff',
  );
  const signed = await api('POST', `/api/specimens/${id}/sign`, {
    verdict: 'suspicious',
    comment: 'ok',
    reviewer: 'dr-lee',
  });
  t.equal(signed.json.status, 'signed');
  t.equal(
    (await api('POST', `/api/specimens/${id}/sign`, { verdict: 'suspicious', reviewer: 'dr-kim' })).status,
    409,
  );
  const amended = await api('POST', `/api/specimens/${id}/amend`, {
    verdict: 'insufficient',
    reason: 'one field only',
    reviewer: 'dr-kim',
  });
  t.equal(amended.json.status, 'amended');
  t.ok(await stream.waitFor(/"status":"amended"/), 'the amendment is pushed live');
});
