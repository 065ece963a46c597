/**
 * One Tern node put together: the broker, its HTTP endpoint (metrics, health, log level),
 * its saved state (persistence file), and the lifecycle an operator drives with signals:
 * graceful shutdown, config reload. The CLI is a thin shell around this; tests and embedders
 * can use it directly.
 */
import { Broker } from './broker.js';
import type { BrokerConfig, LogLevel } from './config.js';
import { type HttpServer, type ReadyState, startHttpServer } from './http-server.js';
import type { Logger } from './logger.js';
import { TernMetrics } from './metrics/collector.js';
import { brokerStatsSource } from './metrics/snapshot.js';
import { Persistence } from './persistence.js';

/** Share of the shutdown time given to clients to take their last bytes; the rest is for saving. */
const CLIENT_GRACE_SHARE = 0.5;

type Phase = 'starting' | 'running' | 'stopping';

export class TernNode {
  readonly broker: Broker;
  readonly log: Logger;
  readonly metrics: TernMetrics;
  private readonly persistence: Persistence | null;
  private http: HttpServer | null = null;
  private phase: Phase = 'starting';
  private stopping: Promise<void> | null = null;

  private constructor(config: BrokerConfig, log: Logger) {
    this.log = log;
    this.broker = new Broker(config, log);
    this.persistence = config.persistenceFile === '' ? null : new Persistence(this.broker, config.persistenceFile, log);
    this.metrics = new TernMetrics({ nodeName: config.nodeName, source: brokerStatsSource(this.broker) });
  }

  /** Serves /health at once, loads saved state, then starts accepting clients (/ready). */
  static async start(config: BrokerConfig, log: Logger): Promise<TernNode> {
    const node = new TernNode(config, log);
    if (config.metrics) {
      node.http = await startHttpServer({
        host: config.metricsHost,
        port: config.metricsPort,
        metrics: node.metrics,
        isReady: () => node.readiness(),
        setLogLevel: (level) => node.broker.setLogLevel(level),
        log: log.child({ component: 'http' }),
      });
    }
    try {
      await node.persistence?.load();
      await node.broker.start();
    } catch (err) {
      await node.http?.close();
      throw err;
    }
    node.persistence?.start(config.persistenceInterval);
    node.phase = 'running';
    return node;
  }

  get config(): BrokerConfig {
    return this.broker.config;
  }

  /** The bound HTTP port, or null when the endpoint is off. */
  get httpPort(): number | null {
    return this.http?.port ?? null;
  }

  readiness(): ReadyState {
    if (this.phase === 'running') return { ready: true };
    return { ready: false, reason: this.phase === 'starting' ? 'starting' : 'shutting down' };
  }

  setLogLevel(level: LogLevel): void {
    const previous = this.broker.config.logLevel;
    this.broker.setLogLevel(level);
    this.log.info({ from: previous, to: level }, 'log level changed');
  }

  /** Applies a reloaded configuration (SIGHUP) and logs what changed. */
  reload(next: BrokerConfig): void {
    const before = { ...this.broker.config };
    const { applied, restartNeeded } = this.broker.applyConfig(next);
    if (applied.length === 0 && restartNeeded.length === 0) {
      this.log.info('config reloaded: nothing changed');
      return;
    }
    const changes = Object.fromEntries(applied.map((key) => [key, { from: before[key], to: next[key] }]));
    this.log.info({ changes, restartNeeded }, `config reloaded: ${applied.length} setting(s) changed`);
    if (restartNeeded.length > 0) {
      this.log.warn({ keys: restartNeeded }, `config reload: ${restartNeeded.join(', ')} only change on restart`);
    }
  }

  /**
   * Graceful shutdown: /ready turns 503, stop accepting, give clients part of
   * shutdownTimeoutMs to take their last bytes, close them (persistent sessions stay, with
   * their queues), then save and close the HTTP endpoint.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.phase = 'stopping';
    const graceMs = Math.floor(this.config.shutdownTimeoutMs * CLIENT_GRACE_SHARE);
    this.persistence?.stop();
    await this.broker.stop(graceMs);
    if (this.persistence !== null) await this.persistence.save();
    await this.http?.close();
  }
}
