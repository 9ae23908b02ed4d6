// @ebpf-net/protocol: the wire format between kernel-collector and reducer.

export * from './schema.js';
export * from './errors.js';
export * from './framing.js';
export * from './ip.js';
export type { FieldType, JsTypeOf, JsInputTypeOf } from './field-types.js';
export type { MessageOf, MessageInput, MessageHandlers } from './message-types.js';
export { compileSchema, type CompiledSchema } from './codegen.js';
export { layoutSchema, type MessageLayout } from './layout.js';
export { wire } from './wire.js';
export { FrameEncoder, type EncoderOptions } from './encoder.js';
export { FrameDecoder, type FrameDecoderOptions, type DecoderStats } from './frame-decoder.js';
export { StreamDecoder, type StreamDecoderOptions } from './stream-decoder.js';
export { renderProtocolDoc } from './docs.js';
