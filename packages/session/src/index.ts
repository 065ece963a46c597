export { LARGE_PAYLOAD, Message, type PublishTemplate } from './message.js';
export { MessageQueue, type OverflowPolicy, type QueuedDelivery } from './message-queue.js';
export {
  Enqueued,
  type Handover,
  type HeldDelivery,
  type InflightEntry,
  Session,
  type SessionLimits,
  type SubscriptionOptions,
} from './session.js';
export { decodeSnapshot, encodeSnapshot, type SnapshotContents, SnapshotError } from './snapshot.js';
