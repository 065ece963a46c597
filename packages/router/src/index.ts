export { RetainedIndex, type RetainedVisitor } from './retained-index.js';
export { SubscriptionIndex, type SubscriptionVisitor } from './subscription-index.js';
