/** Public surface of runtime/: both halves of an agent's execution and the protocol between them (docs/runtime-protocol.md). */
export * from './types.js';
export { Channel, type CallHandler, type ChannelOptions } from './channel.js';
export { CHANNEL_ERRORS, FrameDecoder, MAX_FRAME_BYTES, PROTOCOL_ID, ProtocolError, encodeFrame, type Frame, type ProtocolErrorBody, type Role } from './protocol.js';
