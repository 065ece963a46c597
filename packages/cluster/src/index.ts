export { BusKind, type BusMessage, BusMessageError, decodeBusMessage, encodeBusMessage } from './bus-message.js';
export { type Forwarded, GROUP_TARGET } from './forwarded.js';
export { NODE_NUMBERS, type NodeBus } from './node-bus.js';
export { BatchError, PublishBatchReader, PublishBatchWriter, readPublishBatch } from './publish-batch.js';
export { type HostPort, parseRedisUrl, type RedisTarget, RedisUrlError } from './redis-url.js';
