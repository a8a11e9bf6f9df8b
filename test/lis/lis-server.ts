import { createServer, type Socket } from 'node:net';
import type { Message } from 'node-hl7-client';
import { Server, type Inbound } from 'node-hl7-server';

/** What the test LIS does with a message: acknowledge with a code, stay silent, or drop the connection. */
export type LisBehaviour = 'AA' | 'AE' | 'AR' | 'silent' | 'drop';

export interface TestLis {
  port: number;
  /** MSH-10 of every message the LIS parsed, in arrival order. */
  received: string[];
  /** MSH-10 of every message it acknowledged with AA. */
  accepted: string[];
  /** The parsed messages, for field checks. */
  messages: Message[];
  close(): Promise<void>;
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const addr = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (typeof addr !== 'object' || !addr) throw new Error('no port');
  return addr.port;
}

/**
 * An LIS played by node-hl7-server's MLLP listener: it parses each message with the HL7 library
 * and answers as `behave` says for that message.
 */
export async function startLis(
  port: number,
  behave: (controlId: string, nth: number) => LisBehaviour = () => 'AA',
): Promise<TestLis> {
  const server = new Server({ bindAddress: '127.0.0.1' });
  const sockets: Socket[] = [];
  const lis: Omit<TestLis, 'close'> = { port, received: [], accepted: [], messages: [] };
  let inbound: Inbound | null = null;
  await new Promise<void>((resolve, reject) => {
    inbound = server.createInbound({ port }, async (req, res) => {
      const msg = req.getMessage();
      const controlId = msg.get('MSH.10').toString();
      lis.received.push(controlId);
      // node-hl7-server parses with its own copy of the HL7 library: the same Message API.
      lis.messages.push(msg as unknown as Message);
      const what = behave(controlId, lis.received.length);
      if (what === 'silent') return;
      if (what === 'drop') {
        for (const s of sockets) s.destroy();
        return;
      }
      await res.sendResponse(what);
      if (what === 'AA') lis.accepted.push(controlId);
    });
    inbound.on('client.connect', (socket) => sockets.push(socket));
    inbound.on('listen', () => resolve());
    inbound.on('error', reject);
  });
  return {
    ...lis,
    async close() {
      for (const s of sockets) s.destroy();
      await inbound?.close();
    },
  };
}
