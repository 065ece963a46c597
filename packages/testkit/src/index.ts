export { startBroker, sumSnapshots, type TestBroker, type TestBrokerOptions } from './broker-harness.js';
export { type CertificatePair, makeTestCertificates, type TestCertificates } from './certificates.js';
export { collect, once } from './events.js';
export { LogCapture, type LogLine } from './log-capture.js';
export { RawClient } from './raw-client.js';
export { freePort, runRedisServer, startRedis, type TestRedis } from './redis-harness.js';
export { startRedisCluster, startRedisSentinel, type TestRedisDeployment } from './redis-topologies.js';
