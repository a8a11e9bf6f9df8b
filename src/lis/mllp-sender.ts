import { ackAccepted, MllpLink, MllpTransportError, type MllpTarget } from './mllp.js';
import type { LisMessage } from './outbox.js';
import type { Sender, SendOutcome } from './senders.js';

/** HL7 over MLLP: AA = delivered, AE/AR = held with the LIS's words, no answer = retry. */
export class MllpSender implements Sender {
  private readonly link: MllpLink;
  private reached: boolean | null = null;

  constructor(target: MllpTarget) {
    this.link = new MllpLink(target);
    this.target = `mllp://${target.host}:${target.port}`;
  }

  readonly target: string;

  get connected(): boolean | null {
    return this.reached;
  }

  async send(message: LisMessage, payload: string): Promise<SendOutcome> {
    try {
      const ack = await this.link.send(payload, message.controlId);
      this.reached = true;
      if (ackAccepted(ack.code)) return { kind: 'delivered' };
      const what = ack.code === 'AR' || ack.code === 'CR' ? 'rejected' : 'refused with an application error';
      return { kind: 'held', error: `LIS ${what} (${ack.code})${ack.text ? `: ${ack.text}` : ''}` };
    } catch (err) {
      this.reached = false;
      if (err instanceof MllpTransportError) return { kind: 'retry', error: err.message };
      throw err;
    }
  }

  close(): void {
    this.link.close();
  }
}
