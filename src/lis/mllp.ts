import { connect, type Socket } from 'node:net';
import { Message, MLLPCodec } from 'node-hl7-client';

/** Where the LIS listens and how long to wait for it (config lis.mllp). */
export interface MllpTarget {
  host: string;
  port: number;
  connectTimeoutMs: number;
  ackTimeoutMs: number;
}

/** What the LIS answered: MSA-1 and the reason it gave, if any. */
export interface MllpAck {
  /** AA/CA: accepted; AE/CE: application error; AR/CR: rejected. */
  code: string;
  /** MSA-2: the control id the ACK answers. */
  controlId: string;
  /** MSA-3, ERR-8 or ERR-3 text: the LIS's words for a refusal. */
  text: string | null;
}

/** The LIS could not be reached or did not answer: worth another try later. */
export class MllpTransportError extends Error {
  override readonly name = 'MllpTransportError';
}

/** MSA-1 codes that mean the LIS has the message (original and enhanced acknowledgment modes). */
export function ackAccepted(code: string): boolean {
  return code === 'AA' || code === 'CA';
}

/** Reads an ACK with the HL7 library's parser; an unreadable one is a transport failure. */
export function parseAck(text: string): MllpAck {
  let msg: Message;
  try {
    msg = new Message({ text });
  } catch (err) {
    throw new MllpTransportError(`unreadable ACK from the LIS: ${(err as Error).message}`);
  }
  const code = msg.get('MSA.1').toString().trim().toUpperCase();
  if (!code) throw new MllpTransportError('the LIS answered without an MSA segment');
  const words = [msg.get('MSA.3').toString(), msg.get('ERR.8').toString(), msg.get('ERR.3.2').toString()]
    .map((s) => s.trim())
    .find((s) => s !== '');
  return { code, controlId: msg.get('MSA.2').toString().trim(), text: words ?? null };
}

/**
 * MLLP to the LIS, one connection per message: connect, send, read the ACK, close. The next
 * message goes only after the previous one's ACK, which keeps the order the lab sees equal to the
 * sign-off order, and a late or stray ACK can never be taken for another message's answer (some
 * receivers, node-hl7-server among them, also mishandle a second message on one connection).
 * Framing and ACK decoding are the HL7 library's (MLLPCodec); this adds what its queueing client
 * lacks: the ACK of each message, with a time limit.
 */
export class MllpLink {
  private socket: Socket | null = null;

  constructor(private readonly target: MllpTarget) {}

  /** A message is on its way (connection open). */
  get connected(): boolean {
    return this.socket !== null && !this.socket.destroyed;
  }

  /** Sends one message and resolves with its ACK; throws MllpTransportError when none came. */
  async send(text: string, controlId: string): Promise<MllpAck> {
    const socket = await this.open();
    try {
      const ack = parseAck(await this.exchange(socket, text));
      if (ack.controlId && ack.controlId !== controlId)
        throw new MllpTransportError(`the LIS acknowledged ${ack.controlId}, not ${controlId}`);
      return ack;
    } finally {
      socket.end();
      socket.destroy();
      if (this.socket === socket) this.socket = null;
    }
  }

  private exchange(socket: Socket, text: string): Promise<string> {
    const codec = new MLLPCodec('utf8');
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        finish();
        reject(new MllpTransportError(`no ACK from the LIS within ${this.target.ackTimeoutMs} ms`));
      }, this.target.ackTimeoutMs);
      const onData = (chunk: Buffer) => {
        if (!codec.receiveData(chunk)) return;
        finish();
        resolve(codec.getLastMessage() ?? '');
      };
      const onClose = () => {
        finish();
        reject(new MllpTransportError('the LIS closed the connection before acknowledging'));
      };
      const onError = (err: Error) => {
        finish();
        reject(new MllpTransportError(`connection to the LIS failed: ${err.message}`));
      };
      function finish() {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onError);
      }
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.once('error', onError);
      codec.sendMessage(socket, text, 'utf8');
    });
  }

  private async open(): Promise<Socket> {
    const { host, port, connectTimeoutMs } = this.target;
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    this.socket = socket;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new MllpTransportError(
            `cannot connect to the LIS at ${host}:${port}: no answer within ${connectTimeoutMs} ms`,
          ),
        );
      }, connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new MllpTransportError(`cannot connect to the LIS at ${host}:${port}: ${err.message}`));
      });
    });
    // After the connect: a socket error is reported by exchange(); this keeps it from being unhandled.
    socket.on('error', () => undefined);
    return socket;
  }

  /** Cuts a message in flight (daemon stopping): it counts as unanswered and is sent again later. */
  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }
}
