/**
 * One Tern node put together: the supervisor and its routing workers, the HTTP endpoint
 * (metrics, health, log level), $SYS, the saved state (persistence file), and the lifecycle
 * an operator drives with signals: graceful shutdown, config reload. The CLI is a thin shell
 * around this; embedders can use it directly.
 */
import { SnapshotError } from '@tern/session';
import { type ConfigDiff, diffConfig } from './broker.js';
import type { BrokerConfig, LogLevel } from './config.js';
import { type HttpServer, type ReadyState, startHttpServer } from './http-server.js';
import type { Logger } from './logger.js';
import { TernMetrics } from './metrics/collector.js';
import { PersistenceError, SnapshotFile } from './persistence.js';
import { Supervisor } from './workers/supervisor.js';

/** Share of the shutdown time given to clients to take their last bytes; the rest is for saving. */
const CLIENT_GRACE_SHARE = 0.5;

type Phase = 'starting' | 'running' | 'stopping';

export class TernNode {
  readonly log: Logger;
  readonly config: BrokerConfig;
  readonly supervisor: Supervisor;
  readonly metrics: TernMetrics;
  private readonly file: SnapshotFile | null;
  private http: HttpServer | null = null;
  private phase: Phase = 'starting';
  private stopping: Promise<void> | null = null;
  private readonly timers: NodeJS.Timeout[] = [];

  private constructor(config: BrokerConfig, log: Logger, supervisor: Supervisor, file: SnapshotFile | null) {
    this.config = config;
    this.log = log;
    this.supervisor = supervisor;
    this.file = file;
    this.metrics = new TernMetrics({
      nodeName: config.nodeName,
      source: { snapshots: () => supervisor.stats() },
      cluster: config.redis === '' ? undefined : () => supervisor.clusterStats(),
    });
  }

  /**
   * Loads saved state, starts the routing workers and serves HTTP; the node is ready once
   * every worker accepts clients.
   */
  static async start(config: BrokerConfig, log: Logger): Promise<TernNode> {
    const file = config.persistenceFile === '' ? null : new SnapshotFile(config.persistenceFile, log);
    const snapshot = file === null ? null : await file.read();
    let supervisor: Supervisor;
    try {
      supervisor = await Supervisor.start(config, log, snapshot);
    } catch (err) {
      if (err instanceof SnapshotError && file !== null) {
        throw new PersistenceError('TERN_PERSISTENCE_LOAD', `cannot load ${file.file}: ${err.message}`, err);
      }
      throw err;
    }
    const node = new TernNode(config, log, supervisor, file);
    if (config.metrics) {
      try {
        node.http = await startHttpServer({
          host: config.metricsHost,
          port: config.metricsPort,
          metrics: node.metrics,
          isReady: () => node.readiness(),
          setLogLevel: (level) => node.applyLogLevel(level),
          log: log.child({ component: 'http' }),
        });
      } catch (err) {
        await supervisor.stop(0);
        throw err;
      }
    }
    node.startTimers();
    node.phase = 'running';
    const { port, ports, workerCount: workers } = supervisor;
    log.info({ host: config.host, port, ports, workers }, 'listening for MQTT');
    return node;
  }

  /** The bound MQTT port. */
  get port(): number {
    return this.supervisor.port;
  }

  /** The bound HTTP port, or null when the endpoint is off. */
  get httpPort(): number | null {
    return this.http?.port ?? null;
  }

  readiness(): ReadyState {
    // A node of a cluster cannot take client ids while Redis is out of reach: a load
    // balancer should send new clients elsewhere.
    if (this.phase === 'running' && this.supervisor.clusterStats()?.redisUp === false) {
      return { ready: false, reason: 'Redis is unreachable' };
    }
    if (this.phase === 'running') return { ready: true };
    return { ready: false, reason: this.phase === 'starting' ? 'starting' : 'shutting down' };
  }

  /** Changes the log level of this thread and every worker, with one line saying so. */
  setLogLevel(level: LogLevel): void {
    const previous = this.config.logLevel;
    this.applyLogLevel(level);
    this.log.info({ from: previous, to: level }, 'log level changed');
  }

  private applyLogLevel(level: LogLevel): void {
    this.config.logLevel = level;
    this.log.level = level;
    this.supervisor.setLogLevel(level);
  }

  /**
   * Applies a reloaded configuration (SIGHUP) and logs what changed. Every worker also reads
   * the password and ACL files again, changed configuration or not; the supervisor logs what
   * that changed once they all have.
   */
  reload(next: BrokerConfig): ConfigDiff {
    const before = { ...this.config };
    const diff = diffConfig(this.config, next);
    const { applied, restartNeeded } = diff;
    const updated = { ...this.config } as Record<string, unknown>;
    for (const key of applied) updated[key] = next[key];
    // The supervisor applies it to the config this node shares with it, and to every worker.
    this.supervisor
      .reload(updated as unknown as BrokerConfig)
      .catch((err: unknown) => this.log.error({ err }, 'reload of the access files failed'));
    if (applied.length === 0 && restartNeeded.length === 0) {
      this.log.info('config reloaded: nothing changed');
      return diff;
    }
    if (applied.includes('logLevel')) this.log.level = this.config.logLevel;
    const changes = Object.fromEntries(applied.map((key) => [key, { from: before[key], to: next[key] }]));
    this.log.info({ changes, restartNeeded }, `config reloaded: ${applied.length} setting(s) changed`);
    if (restartNeeded.length > 0) {
      this.log.warn({ keys: restartNeeded }, `config reload: ${restartNeeded.join(', ')} only change on restart`);
    }
    return diff;
  }

  /**
   * Graceful shutdown: /ready turns 503, the workers stop accepting and give clients part of
   * shutdownTimeoutMs to take their last bytes, then close them (persistent sessions stay,
   * with their queues); the node saves and closes the HTTP endpoint.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.phase = 'stopping';
    for (const timer of this.timers) clearInterval(timer);
    const graceMs = Math.floor(this.config.shutdownTimeoutMs * CLIENT_GRACE_SHARE);
    const snapshot = await this.supervisor.stop(graceMs);
    if (this.file !== null) await this.file.write(snapshot);
    await this.http?.close();
  }

  private startTimers(): void {
    const file = this.file;
    if (file !== null && this.config.persistenceInterval > 0) {
      const timer = setInterval(() => {
        this.supervisor
          .snapshot()
          .then((bytes) => (this.phase === 'running' ? file.write(bytes) : undefined))
          .catch((err: unknown) => this.log.error({ err }, 'periodic save failed'));
      }, this.config.persistenceInterval * 1000);
      timer.unref();
      this.timers.push(timer);
    }
  }
}
