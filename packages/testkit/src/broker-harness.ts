import {
  Broker,
  type BrokerConfig,
  resolveConfig,
  type SessionInfo,
  type StatsSnapshot,
  Supervisor,
  snapshotStats,
} from '@tern/broker';
import { LogCapture } from './log-capture.js';

/** A broker under test: one in this thread, or a node of routing worker threads. */
export interface TestBroker {
  /** The in-thread broker (null when the node runs routing workers). */
  broker: Broker | null;
  /** The supervisor of the routing workers (null for the in-thread broker). */
  supervisor: Supervisor | null;
  /** Routing worker threads; 0 for the in-thread broker. */
  workers: number;
  /** The TCP listener's port (or, with TCP off, the first listener's). */
  port: number;
  /** The bound port of every enabled listener: tcp, tls, ws, wss. */
  ports: Partial<Record<'tcp' | 'tls' | 'ws' | 'wss', number>>;
  logs: LogCapture;
  /** The node's figures, summed over its workers. */
  stats(): Promise<StatsSnapshot>;
  /** Where a session is and what it holds (null when there is none). */
  session(clientId: string): Promise<SessionInfo | null>;
  stop(): Promise<void>;
}

export interface TestBrokerOptions extends Partial<BrokerConfig> {
  /**
   * Routing worker threads; 0 runs the broker in this thread. @default the TERN_TEST_WORKERS
   * environment variable, else 0 (so the whole suite can be run against a node of workers)
   */
  workers?: number;
}

/**
 * A real broker on 127.0.0.1 and a free port (every listener it enables: pass tlsPort: 0,
 * wsPort: 0, wssPort: 0 with them and read `ports`), logging into a capture (worker threads send
 * their lines to this thread). $SYS is off unless asked for, so tests see only their own
 * traffic; the HTTP endpoint is off.
 */
export async function startBroker(options: TestBrokerOptions = {}): Promise<TestBroker> {
  const logs = new LogCapture();
  const workers = options.workers ?? Number(process.env.TERN_TEST_WORKERS ?? 0);
  const { workers: _ignored, ...rest } = options;
  const config = resolveConfig({
    host: '127.0.0.1',
    port: 0,
    sysInterval: 0,
    metrics: false,
    logLevel: 'debug',
    ...rest,
    workers: Math.max(1, workers),
  });
  if (workers === 0) {
    const broker = new Broker(config, logs.logger);
    await broker.start();
    return {
      broker,
      supervisor: null,
      workers: 0,
      port: broker.port,
      ports: broker.ports,
      logs,
      stats: async () => snapshotStats(broker),
      session: async (clientId) => sessionInfo(broker, clientId),
      stop: () => broker.stop(),
    };
  }
  const supervisor = await Supervisor.start(config, logs.logger, null, { onLog: (line) => logs.ingest(line) });
  return {
    broker: null,
    supervisor,
    workers,
    port: supervisor.port,
    ports: supervisor.ports,
    logs,
    stats: async () => sumSnapshots(await supervisor.stats()),
    session: (clientId) => supervisor.sessionInfo(clientId),
    stop: async () => {
      await supervisor.stop(0);
    },
  };
}

function sessionInfo(broker: Broker, clientId: string): SessionInfo | null {
  const session = broker.sessions.get(clientId);
  if (session === undefined) return null;
  return {
    clientId,
    worker: 0,
    online: session.owner !== null,
    persistent: !session.isTransient,
    subscriptions: [...session.subscriptions].map(([filter, o]): [string, number] => [filter, (o % 64) & 3]),
    queued: session.queue.length,
    inflight: session.inflight.size,
  };
}

/** One snapshot for the node: numbers summed; retained messages (kept by every worker) not. */
export function sumSnapshots(snapshots: readonly StatsSnapshot[]): StatsSnapshot {
  const [first, ...others] = snapshots;
  if (first === undefined) throw new Error('no worker answered');
  const out = structuredClone(first);
  for (const s of others) {
    addInto(out.counters as unknown as Record<string, unknown>, s.counters as unknown as Record<string, unknown>);
    const retained = Math.max(out.gauges.retainedMessages, s.gauges.retainedMessages);
    addInto(out.gauges as unknown as Record<string, unknown>, s.gauges as unknown as Record<string, unknown>);
    out.gauges.retainedMessages = retained;
  }
  out.worker = 'all';
  return out;
}

function addInto(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) {
    const current = target[key];
    if (typeof value === 'number' && typeof current === 'number') target[key] = current + value;
    else if (Array.isArray(value) && Array.isArray(current)) {
      for (let i = 0; i < value.length; i++) current[i] = (current[i] ?? 0) + (value[i] as number);
    } else if (typeof value === 'object' && value !== null && typeof current === 'object' && current !== null) {
      addInto(current as Record<string, unknown>, value as Record<string, unknown>);
    }
  }
}
