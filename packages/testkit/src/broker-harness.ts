import { Broker, type BrokerConfig, resolveConfig } from '@tern/broker';
import { LogCapture } from './log-capture.js';

export interface TestBroker {
  broker: Broker;
  port: number;
  logs: LogCapture;
  stop(): Promise<void>;
}

/**
 * A real broker on 127.0.0.1 and a free port, in this process, logging into a capture.
 * $SYS is off unless asked for, so tests see only their own traffic.
 */
export async function startBroker(options: Partial<BrokerConfig> = {}): Promise<TestBroker> {
  const logs = new LogCapture();
  const config = resolveConfig({ host: '127.0.0.1', port: 0, sysInterval: 0, ...options });
  const broker = new Broker(config, logs.logger);
  await broker.start();
  return { broker, port: broker.port, logs, stop: () => broker.stop() };
}
