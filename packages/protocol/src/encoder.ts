// Encodes messages into frames, in one reusable buffer: no allocation per message.

import { type CompiledSchema, type WriteTarget } from './codegen.js';
import {
  DEFAULT_TARGET_FRAME_BYTES,
  FRAME_HEADER_SIZE,
  FRAME_SYNC,
  MAX_FRAME_MESSAGES,
  MAX_MESSAGE_SIZE,
} from './framing.js';
import type { MessageInput } from './message-types.js';
import type { MessageName } from './schema.js';
import { wire } from './wire.js';

export interface EncoderOptions {
  /** Close a frame once its body reaches this many bytes (default 64 KiB). */
  targetFrameBytes?: number;
  /** Initial buffer size; it grows (by doubling) as needed and is kept. */
  initialCapacity?: number;
}

/**
 * Appends messages to frames. `write` adds one message; `finish` closes the open frame and
 * returns every frame written since the last `finish`, as one copy the caller may keep.
 */
export class FrameEncoder implements WriteTarget {
  view: DataView;
  bytes: Buffer;
  private pos = 0;
  /** Offset of the open frame's header, or -1 when no frame is open. */
  private frameStart = -1;
  private frameMessages = 0;
  private messages = 0;
  private readonly targetFrameBytes: number;

  constructor(
    options: EncoderOptions = {},
    private readonly schema: CompiledSchema = wire,
  ) {
    this.targetFrameBytes = options.targetFrameBytes ?? DEFAULT_TARGET_FRAME_BYTES;
    this.bytes = Buffer.allocUnsafe(Math.max(options.initialCapacity ?? 64 * 1024, FRAME_HEADER_SIZE + MAX_MESSAGE_SIZE));
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }

  /** Appends one message. Throws EncodeError when a value cannot be carried (nothing is written then). */
  write<N extends MessageName>(name: N, message: MessageInput<N>): void {
    this.writeAny(name, message as Record<string, unknown>);
  }

  /**
   * A function that appends one kind of message: write() without the lookup by name, for hot
   * paths that send the same kinds over and over (the lookup is a megamorphic load per message).
   */
  writerFor<N extends MessageName>(name: N): (message: MessageInput<N>) => void {
    const writer = this.schema.writers[name];
    if (writer === undefined) throw new TypeError(`unknown message ${name}`);
    return (message) => writer(this, message as Record<string, unknown>);
  }

  /** Like write, for schemas other than the project's (tests, tools). */
  writeAny(name: string, message: Record<string, unknown>): void {
    const writer = this.schema.writers[name];
    if (writer === undefined) throw new TypeError(`unknown message ${name}`);
    writer(this, message);
  }

  /** Bytes written and not yet taken by finish(). */
  get pendingBytes(): number {
    return this.pos;
  }

  /** Messages written and not yet taken by finish(). */
  get pendingMessages(): number {
    return this.messages;
  }

  reserve(length: number): number {
    if (this.frameStart >= 0) {
      const body = this.pos - this.frameStart - FRAME_HEADER_SIZE;
      if (body + length > this.targetFrameBytes || this.frameMessages === MAX_FRAME_MESSAGES) this.closeFrame();
    }
    if (this.frameStart < 0) {
      this.ensureCapacity(FRAME_HEADER_SIZE + length);
      this.frameStart = this.pos;
      this.pos += FRAME_HEADER_SIZE;
    } else {
      this.ensureCapacity(length);
    }
    const at = this.pos;
    this.pos += length;
    this.frameMessages++;
    this.messages++;
    return at;
  }

  /** Closes the open frame and returns all bytes written since the last call (empty if none). */
  finish(): Uint8Array {
    this.closeFrame();
    const out = new Uint8Array(this.bytes.buffer.slice(this.bytes.byteOffset, this.bytes.byteOffset + this.pos));
    this.pos = 0;
    this.messages = 0;
    return out;
  }

  private closeFrame(): void {
    if (this.frameStart < 0) return;
    const start = this.frameStart;
    this.view.setUint32(start, this.pos - start - FRAME_HEADER_SIZE, true);
    this.view.setUint16(start + 4, this.frameMessages, true);
    this.view.setUint16(start + 6, FRAME_SYNC, true);
    this.frameStart = -1;
    this.frameMessages = 0;
  }

  private ensureCapacity(extra: number): void {
    const needed = this.pos + extra;
    if (needed <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < needed) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.bytes.copy(grown, 0, 0, this.pos);
    this.bytes = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }
}
