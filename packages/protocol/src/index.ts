export { CMD_BY_TYPE, MAX_PACKET_SIZE, MAX_REMAINING_LENGTH, PacketType, TYPE_BY_CMD } from './constants.js';
export { type DecoderOptions, PacketDecoder, type PacketHandler, type PacketSink } from './decoder.js';
export {
  DISCONNECT_BYTES,
  type EncodedPublish,
  encode,
  encodeAck,
  encodedLength,
  encodeInto,
  encodePublishHeader,
  encodePublishShared,
  PINGREQ_BYTES,
  PINGRESP_BYTES,
  PUBLISH_FIRST_BYTE,
  publishIdOffset,
  setDup,
  setPacketId,
} from './encode.js';
export { EncodeError, ProtocolError, type ViolationCode, Violations } from './errors.js';
export type * from './packets.js';
export { PROPERTY_SPECS, type Properties } from './properties.js';
export { encodePropertiesBody, encodePublishV5, type PublishExtras, type PublishV5 } from './publish-v5.js';
export { ConnackReturnCode, ReasonCode, SUBACK_FAILURE } from './reason-codes.js';
export {
  assertTopicFilter,
  assertTopicName,
  isValidTopicFilter,
  isValidTopicName,
  topicFilterViolation,
  topicNameViolation,
} from './topic.js';
