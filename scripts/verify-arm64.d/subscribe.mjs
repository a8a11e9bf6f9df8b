#!/usr/bin/env node
/**
 * MQTT subscriber on the x86 host for scripts/verify-arm64: records every message under
 * `<prefix>/#` as one JSON line {topic, retained, payload} until SIGTERM. It runs outside the
 * arm64 root on purpose: the messages must cross a real broker from the emulated daemon.
 *
 * usage: node subscribe.mjs <broker url> <topic filter> <out.jsonl>
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import mqtt from 'mqtt';

const [url, filter, out] = process.argv.slice(2);
if (!url || !filter || !out) {
  process.stderr.write('usage: node subscribe.mjs <broker url> <topic filter> <out.jsonl>\n');
  process.exit(2);
}
writeFileSync(out, '');
const client = mqtt.connect(url, { clientId: `verify-arm64-${process.pid}`, reconnectPeriod: 500 });
client.on('connect', () => {
  client.subscribe(filter, { qos: 1 }, (err) => {
    if (err) process.stderr.write(`subscribe: ${err.message}\n`);
    else process.stderr.write(`subscribed to ${filter}\n`);
  });
});
client.on('message', (topic, payload, packet) => {
  appendFileSync(
    out,
    `${JSON.stringify({ topic, retained: packet.retain, payload: payload.toString('utf8') })}\n`,
  );
});
client.on('error', (err) => process.stderr.write(`mqtt: ${err.message}\n`));
const stop = () => client.end(false, {}, () => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
