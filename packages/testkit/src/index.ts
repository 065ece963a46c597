export { startBroker, type TestBroker } from './broker-harness.js';
export { collect, once } from './events.js';
export { LogCapture, type LogLine } from './log-capture.js';
export { RawClient } from './raw-client.js';
