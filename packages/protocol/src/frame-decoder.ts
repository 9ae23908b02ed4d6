// Walks complete frames and hands their messages to typed handlers.

import type { CompiledSchema, HandlerTable, WalkCounters, Walker } from './codegen.js';
import { ProtocolError } from './errors.js';
import { DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_SIZE, FRAME_SYNC } from './framing.js';
import type { MessageHandlers } from './message-types.js';
import { wire } from './wire.js';

export interface FrameDecoderOptions {
  /** Largest frame body accepted (default 4 MiB); a larger one is FRAME_TOO_LARGE. */
  maxFrameBytes?: number;
  /** Called for each message whose id this decoder does not know (it is skipped and counted). */
  onUnknown?: (id: number, offset: number) => void;
}

export interface DecoderStats extends WalkCounters {
  frames: number;
  bytes: number;
}

export class FrameDecoder {
  readonly stats: DecoderStats = { frames: 0, bytes: 0, messages: 0, unknownMessages: 0 };
  readonly maxFrameBytes: number;
  private readonly walk: Walker;

  constructor(
    handlers: MessageHandlers | HandlerTable,
    options: FrameDecoderOptions = {},
    schema: CompiledSchema = wire,
  ) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.walk = schema.createWalker(handlers as HandlerTable, schema.createMessageObjects(), this.stats, options.onUnknown);
  }

  /**
   * Checks the frame header at `p` (its 8 bytes must be there) and returns the frame's total
   * size, header included. Header errors are found before the body arrives.
   */
  frameSize(view: DataView, p: number, base: number): number {
    if (view.getUint16(p + 6, true) !== FRAME_SYNC) {
      throw new ProtocolError('BAD_FRAME_SYNC', 'frame header without sync word', base + p);
    }
    const body = view.getUint32(p, true);
    if (body > this.maxFrameBytes) {
      throw new ProtocolError('FRAME_TOO_LARGE', `frame of ${body} bytes exceeds the limit of ${this.maxFrameBytes}`, base + p);
    }
    return FRAME_HEADER_SIZE + body;
  }

  /** Decodes the complete frame at `p`, of `size` bytes (from frameSize). */
  decodeFrame(view: DataView, bytes: Buffer, p: number, size: number, base: number): void {
    const count = view.getUint16(p + 4, true);
    this.walk(view, bytes, p + FRAME_HEADER_SIZE, p + size, count, base);
    this.stats.frames++;
    this.stats.bytes += size;
  }

  /** Decodes a buffer that holds whole frames only (tests, tools). */
  decodeAll(data: Uint8Array): void {
    const bytes = toBuffer(data);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let p = 0;
    while (p < bytes.length) {
      const size = bytes.length - p < FRAME_HEADER_SIZE ? Infinity : this.frameSize(view, p, 0);
      if (size > bytes.length - p) throw new ProtocolError('BAD_FRAME', 'input ends inside a frame', p);
      this.decodeFrame(view, bytes, p, size, 0);
      p += size;
    }
  }
}

export function toBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
