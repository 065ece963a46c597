export { RetainedIndex, type RetainedVisitor } from './retained-index.js';
export { RouteTable } from './route-table.js';
export { isSharedFilter, parseSharedFilter, type SharedFilter, ShareGroup, ShareGroups } from './share-groups.js';
export { SubscriptionIndex, type SubscriptionVisitor } from './subscription-index.js';
export { topicMatchesFilter } from './topic-match.js';
