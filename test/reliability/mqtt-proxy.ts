/**
 * A TCP proxy between the daemon and the broker that understands MQTT framing just enough to
 * drop PUBACK packets on their way back to the daemon (a broker or middlebox that loses
 * acknowledgements), and to cut every connection on demand.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export interface MqttProxy {
  url: string;
  /** While true, PUBACKs from the broker never reach the client. */
  dropPubacks: boolean;
  /** PUBACKs dropped so far. */
  dropped: number;
  /** Destroys every proxied connection (the client reconnects through the proxy). */
  cut(): void;
  close(): Promise<void>;
}

const PUBACK = 4;

/** Splits a byte stream into whole MQTT packets; returns the packets and the unused tail. */
function splitPackets(buf: Buffer): { packets: Buffer[]; rest: Buffer } {
  const packets: Buffer[] = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    let len = 0;
    let mult = 1;
    let i = off + 1;
    let complete = false;
    for (let n = 0; n < 4 && i < buf.length; n++, i++) {
      const b = buf[i]!;
      len += (b & 0x7f) * mult;
      mult *= 128;
      if ((b & 0x80) === 0) {
        complete = true;
        i++;
        break;
      }
    }
    if (!complete || buf.length < i + len) break;
    packets.push(buf.subarray(off, i + len));
    off = i + len;
  }
  return { packets, rest: buf.subarray(off) };
}

export async function startMqttProxy(brokerPort: number): Promise<MqttProxy> {
  const pairs = new Set<[Socket, Socket]>();
  const proxy: MqttProxy = {
    url: '',
    dropPubacks: false,
    dropped: 0,
    cut() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    async close() {
      proxy.cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((client) => {
    const upstream = connect(brokerPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    let pending = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      const { packets, rest } = splitPackets(Buffer.concat([pending, chunk]));
      pending = Buffer.from(rest);
      for (const p of packets) {
        if (proxy.dropPubacks && p[0]! >> 4 === PUBACK) {
          proxy.dropped++;
          continue;
        }
        client.write(p);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
