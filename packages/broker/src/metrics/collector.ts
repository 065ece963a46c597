/**
 * Turns worker snapshots into Prometheus metrics at scrape time. The broker counts in plain
 * numbers; only a scrape asks the source for snapshots (one per routing worker) and fills a
 * prom-client Registry from them, alongside the process's default metrics.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { COUNTERS, forEachSeries, GAUGES, type MetricDef } from './catalogue.js';
import { type ClusterStatsSource, registerClusterMetrics } from './cluster-metrics.js';
import { CounterCarry } from './counter-carry.js';
import type { SnapshotCounters, SnapshotGauges, StatsSnapshot, StatsSource } from './snapshot.js';

export interface MetricsOptions {
  /** The `node` label on every series (config.nodeName). */
  nodeName: string;
  source: StatsSource;
  /** Also export prom-client's process_* and nodejs_* metrics for this process. @default true */
  defaultMetrics?: boolean;
  /** The node's cluster figures (a node with `redis`); absent: no tern_cluster_* metrics. */
  cluster?: ClusterStatsSource;
}

type CounterKey = keyof SnapshotCounters;
type GaugeKey = keyof SnapshotGauges;

const COUNTER_KEYS = Object.keys(COUNTERS) as CounterKey[];
const GAUGE_KEYS = Object.keys(GAUGES) as GaugeKey[];

function labelNames(def: MetricDef): string[] {
  return def.label === undefined ? ['worker'] : ['worker', def.label.name];
}

function labels(def: MetricDef, worker: string, label: string): Record<string, string> {
  return def.label === undefined ? { worker } : { worker, [def.label.name]: label };
}

/** The metrics of one node: a Registry refilled from fresh snapshots on every scrape. */
export class TernMetrics {
  readonly registry = new Registry();
  private readonly source: StatsSource;
  private readonly counters = new Map<CounterKey, Counter>();
  private readonly gauges = new Map<GaugeKey, Gauge>();
  private readonly carry = new CounterCarry();
  /** The scrape in progress: concurrent scrapes share it rather than ask the workers twice. */
  private pending: Promise<string> | null = null;

  constructor(options: MetricsOptions) {
    this.source = options.source;
    this.registry.setDefaultLabels({ node: options.nodeName });
    const registers = [this.registry];
    for (const key of COUNTER_KEYS) {
      const def = COUNTERS[key];
      this.counters.set(key, new Counter({ name: def.name, help: def.help, labelNames: labelNames(def), registers }));
    }
    for (const key of GAUGE_KEYS) {
      const def = GAUGES[key];
      this.gauges.set(key, new Gauge({ name: def.name, help: def.help, labelNames: labelNames(def), registers }));
    }
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    if (options.cluster !== undefined) registerClusterMetrics(this.registry, options.cluster);
  }

  /** The Content-Type of what `scrape` returns (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Prometheus text for one scrape: fresh snapshots from the source, then the whole registry. */
  scrape(): Promise<string> {
    this.pending ??= this.collect().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  /**
   * Folds snapshots into the registry: counters from the carried monotonic totals (workers
   * that did not report keep theirs), gauges only from the workers in `snapshots`.
   */
  update(snapshots: readonly StatsSnapshot[]): void {
    const carry = this.carry;
    for (const snapshot of snapshots) {
      const { worker, incarnation } = snapshot;
      for (const key of COUNTER_KEYS) {
        forEachSeries(COUNTERS[key], snapshot.counters[key], (label, n) => {
          carry.record(worker, incarnation, key, label, n);
        });
      }
    }
    for (const counter of this.counters.values()) counter.reset();
    carry.forEach((worker, key, label, total) => {
      const def = COUNTERS[key as CounterKey];
      this.counters.get(key as CounterKey)?.inc(labels(def, worker, label), total);
    });
    for (const gauge of this.gauges.values()) gauge.reset();
    for (const snapshot of snapshots) {
      for (const key of GAUGE_KEYS) {
        const def = GAUGES[key];
        const gauge = this.gauges.get(key) as Gauge;
        forEachSeries(def, snapshot.gauges[key], (label, n) => {
          gauge.set(labels(def, snapshot.worker, label), n);
        });
      }
    }
  }

  private async collect(): Promise<string> {
    this.update(await this.source.snapshots());
    return this.registry.metrics();
  }
}
