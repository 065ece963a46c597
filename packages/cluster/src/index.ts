export type { Forwarded } from './forwarded.js';
export { BatchError, PublishBatchWriter, readPublishBatch } from './publish-batch.js';
