// Typed errors. Decoding never throws anything but ProtocolError for any input; callers close
// the one connection it came from. Encoding throws EncodeError for values the wire cannot carry.

export type ProtocolErrorCode =
  /** A frame header announces more bytes than the decoder accepts. */
  | 'FRAME_TOO_LARGE'
  /** A frame header lacks the sync word: the stream is not ours, or it lost its place. */
  | 'BAD_FRAME_SYNC'
  /** A frame's messages do not add up to its length or its message count. */
  | 'BAD_FRAME'
  /** A message's length is shorter than its fields, or a field overruns the message. */
  | 'BAD_MESSAGE'
  /** The stream does not start with a handshake. */
  | 'HANDSHAKE_EXPECTED'
  /** A second handshake on the same stream. */
  | 'DUPLICATE_HANDSHAKE'
  /** The handshake does not carry MAGIC. */
  | 'BAD_MAGIC'
  /** The peer speaks another protocol version. */
  | 'BAD_VERSION';

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    /** Byte offset in the stream (or frame) where the problem was found. */
    readonly offset: number,
  ) {
    super(`${message} (${code} at byte ${offset})`);
  }
}

export class EncodeError extends Error {
  override readonly name = 'EncodeError';
  constructor(
    readonly messageName: string,
    readonly field: string,
    message: string,
  ) {
    super(`${messageName}.${field}: ${message}`);
  }
}
