// Decodes a byte stream (one TCP connection) that arrives in chunks split anywhere.
//
// Complete frames are decoded in place, straight from the chunk; only a frame cut by the end
// of a chunk is copied, into a buffer kept for the next chunk. That buffer never holds more
// than one frame, so memory is bounded by maxFrameBytes.

import type { CompiledSchema, HandlerTable } from './codegen.js';
import { ProtocolError } from './errors.js';
import { FRAME_HEADER_SIZE, MESSAGE_HEADER_SIZE } from './framing.js';
import { type DecoderStats, FrameDecoder, type FrameDecoderOptions, toBuffer } from './frame-decoder.js';
import type { MessageHandlers, MessageOf } from './message-types.js';
import { MAGIC, PROTOCOL_VERSION } from './schema.js';
import { wire } from './wire.js';

const HANDSHAKE_ID = 1;

export interface StreamDecoderOptions extends FrameDecoderOptions {
  /** Require the stream to start with a valid handshake (default true). */
  expectHandshake?: boolean;
}

export class StreamDecoder {
  private readonly frames: FrameDecoder;
  private readonly expectHandshake: boolean;
  private handshakeSeen = false;
  /** Stream offset of the first byte not yet consumed. */
  private consumed = 0;
  /** Bytes of an incomplete frame, kept until the rest arrives. */
  private pending: Buffer = Buffer.alloc(0);
  private pendingLength = 0;
  /** Size of the pending frame once its header is in; until then, the header's size. */
  private pendingSize = FRAME_HEADER_SIZE;

  constructor(handlers: MessageHandlers, options: StreamDecoderOptions = {}, schema: CompiledSchema = wire) {
    this.expectHandshake = options.expectHandshake ?? true;
    const table = { ...handlers } as HandlerTable;
    if (this.expectHandshake) {
      const userHandshake = handlers.handshake;
      table.handshake = ((m: Readonly<MessageOf<'handshake'>>) => {
        if (this.handshakeSeen) {
          throw new ProtocolError('DUPLICATE_HANDSHAKE', 'a second handshake on the same stream', this.consumed);
        }
        this.handshakeSeen = true;
        userHandshake?.(m);
      }) as HandlerTable[string];
    }
    this.frames = new FrameDecoder(table, options, schema);
  }

  get stats(): Readonly<DecoderStats> {
    return this.frames.stats;
  }

  /** Total bytes taken in so far, including a partial frame. */
  get offset(): number {
    return this.consumed + this.pendingLength;
  }

  /** Bytes held for a frame that is not complete yet. */
  get bufferedBytes(): number {
    return this.pendingLength;
  }

  /**
   * Decodes every complete frame that `chunk` completes, calling the handlers. Throws
   * ProtocolError when the stream is malformed; the stream is then unusable.
   */
  push(chunk: Uint8Array): void {
    let taken = 0;
    if (this.pendingLength > 0) {
      taken = this.fillPending(chunk);
      if (this.pendingLength < this.pendingSize) return;
      const frame = this.pending.subarray(0, this.pendingLength);
      this.pendingLength = 0;
      this.pendingSize = FRAME_HEADER_SIZE;
      this.decodeFrames(frame);
      // Do not keep a large frame's buffer for the life of the connection.
      if (this.pending.length > 64 * 1024) this.pending = Buffer.alloc(0);
    }
    if (taken < chunk.length) this.decodeFrames(toBuffer(chunk).subarray(taken));
  }

  /** Copies from `chunk` what the pending frame lacks: its header, then its body. Returns bytes taken. */
  private fillPending(chunk: Uint8Array): number {
    let taken = 0;
    if (this.pendingLength < FRAME_HEADER_SIZE) {
      taken = Math.min(FRAME_HEADER_SIZE - this.pendingLength, chunk.length);
      this.appendPending(chunk, 0, taken);
      if (this.pendingLength < FRAME_HEADER_SIZE) return taken;
      const header = new DataView(this.pending.buffer, this.pending.byteOffset, FRAME_HEADER_SIZE);
      this.pendingSize = this.frames.frameSize(header, 0, this.consumed);
    }
    const n = Math.min(this.pendingSize - this.pendingLength, chunk.length - taken);
    this.appendPending(chunk, taken, n);
    return taken + n;
  }

  /** Decodes the complete frames at the start of `bytes`; keeps a trailing partial frame. */
  private decodeFrames(bytes: Buffer): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const base = this.consumed; // stream offset of bytes[0]
    let p = 0;
    while (bytes.length - p >= FRAME_HEADER_SIZE) {
      const size = this.frames.frameSize(view, p, base);
      if (size > bytes.length - p) {
        this.pendingSize = size;
        break;
      }
      if (!this.handshakeSeen && this.expectHandshake) this.checkHandshake(view, p, size);
      this.frames.decodeFrame(view, bytes, p, size, base);
      p += size;
      this.consumed += size;
    }
    if (p < bytes.length) this.appendPending(bytes, p, bytes.length - p);
  }

  /** The first message of the stream must be a handshake with our magic and version. */
  private checkHandshake(view: DataView, frame: number, size: number): void {
    const p = frame + FRAME_HEADER_SIZE;
    const at = this.consumed + FRAME_HEADER_SIZE; // consumed is the stream offset of this frame
    const count = view.getUint16(frame + 4, true);
    if (count === 0 || size - FRAME_HEADER_SIZE < MESSAGE_HEADER_SIZE + 6 || view.getUint16(p, true) !== HANDSHAKE_ID) {
      throw new ProtocolError('HANDSHAKE_EXPECTED', 'the stream does not start with a handshake', at);
    }
    const magic = view.getUint32(p + MESSAGE_HEADER_SIZE, true);
    if (magic !== MAGIC) {
      throw new ProtocolError('BAD_MAGIC', `handshake magic 0x${magic.toString(16)} is not 0x${MAGIC.toString(16)}`, at + MESSAGE_HEADER_SIZE);
    }
    const version = view.getUint16(p + MESSAGE_HEADER_SIZE + 4, true);
    if (version !== PROTOCOL_VERSION) {
      throw new ProtocolError('BAD_VERSION', `peer speaks protocol version ${version}, this side ${PROTOCOL_VERSION}`, at + MESSAGE_HEADER_SIZE + 4);
    }
  }

  private appendPending(src: Uint8Array, from: number, length: number): void {
    const needed = this.pendingLength + length;
    if (needed > this.pending.length) {
      // pendingSize is known (and bounded by maxFrameBytes) once a header is in.
      const grown = Buffer.allocUnsafe(Math.max(needed, this.pendingSize, 4096));
      this.pending.copy(grown, 0, 0, this.pendingLength);
      this.pending = grown;
    }
    this.pending.set(src.subarray(from, from + length), this.pendingLength);
    this.pendingLength = needed;
  }
}
