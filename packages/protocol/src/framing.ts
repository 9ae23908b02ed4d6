// The framing around messages.
//
// A stream is a sequence of frames. A frame is an 8-byte header and a body of messages:
//   u32 bodyLength | u16 messageCount | u16 FRAME_SYNC
// A message is a 4-byte header and its fields:
//   u16 id | u16 length (of the whole message, header included)
// The length lets a decoder skip a message it does not know.

export const FRAME_HEADER_SIZE = 8;
/** Constant last field of every frame header; finds garbage and lost framing at once. */
export const FRAME_SYNC = 0xeb4e;
export const MESSAGE_HEADER_SIZE = 4;
export const MAX_MESSAGE_SIZE = 0xffff;
export const MAX_FRAME_MESSAGES = 0xffff;
/** The largest frame body a decoder accepts unless told otherwise. */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** The body size at which an encoder closes a frame and starts the next one. */
export const DEFAULT_TARGET_FRAME_BYTES = 64 * 1024;
