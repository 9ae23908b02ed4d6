// The reducer's one message to a collector: how many of the connection's messages it has
// applied. The collector reports what a broken connection left unacknowledged as lost.

import { FrameEncoder } from '@ebpf-net/protocol';

/** Acks wait this long after the data they acknowledge, so that one covers many chunks. */
export const ACK_DELAY_MS = 100;

const encoder = new FrameEncoder();

/** One frame holding one ack (a copy, safe to hand to socket.write). */
export function encodeAck(messages: number): Uint8Array {
  encoder.write('ack', { messages });
  return encoder.finish();
}
