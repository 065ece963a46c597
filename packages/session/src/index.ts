export { carriedProperties, takeCarriedProperties } from './carried-properties.js';
export { LARGE_PAYLOAD, Message, type PublishTemplate } from './message.js';
export { type DeferredDeliveries, MessageQueue, type OverflowPolicy, type QueuedDelivery } from './message-queue.js';
export {
  Enqueued,
  type Handover,
  type HeldDelivery,
  type InflightEntry,
  Session,
  type SessionLimits,
} from './session.js';
export { decodeSnapshot, encodeSnapshot, type SnapshotContents, SnapshotError } from './snapshot.js';
export { MemorySessionStore } from './store/memory-store.js';
export { decodeStoredMessage, encodeStoredMessage, type ReadString } from './store/message-codec.js';
export { RedisSessionStore, type RedisStoreOptions } from './store/redis-store.js';
export {
  decodeSession,
  type EncodedDelivery,
  type EncodedSession,
  EXPIRE_BATCH,
  type SessionStore,
  type StoredDelivery,
  type StoredMessage,
  type StoredSession,
  type StoredSubscription,
  StoreError,
  type StoreLimits,
} from './store/session-store.js';
export {
  hasFlag,
  NO_LOCAL,
  optionsQos,
  packOptions,
  RETAIN_AS_PUBLISHED,
  retainHandling,
  subscriptionId,
  type UnpackedOptions,
} from './subscription-options.js';
