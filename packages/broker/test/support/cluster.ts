/** What the cluster, session-store and data-directory tests share: nodes, and raw QoS 1 flows. */
import type { Packet } from '@tern/protocol';
import { RawClient, startBroker, type TestBroker } from '@tern/testkit';
import type { Test } from 'tap';

type Publish = Extract<Packet, { cmd: 'publish' }>;

/** Short enough that a dead node is reaped within a test, long enough for a busy CI machine. */
export const HEARTBEAT_MS = 100;
export const NODE_TIMEOUT_MS = 1500;

/** The CLI flags for the same timings (a node run as its own process). */
export const CLUSTER_TIMING_FLAGS = [
  '--cluster-heartbeat-ms',
  String(HEARTBEAT_MS),
  '--cluster-node-timeout-ms',
  String(NODE_TIMEOUT_MS),
];

/** A node of `workers` routing workers in this process, in the Redis at `url` under `prefix`. */
export async function clusterNode(
  t: Test,
  url: string,
  prefix: string,
  workers = 1,
  name = 'node',
): Promise<TestBroker> {
  const tb = await startBroker({
    workers,
    redis: url,
    redisPrefix: prefix,
    nodeName: name,
    clusterHeartbeatMs: HEARTBEAT_MS,
    clusterNodeTimeoutMs: NODE_TIMEOUT_MS,
  });
  t.teardown(() => tb.stop());
  return tb;
}

/** A raw 3.1.1 client, CONNECTed; destroyed when the test ends. */
export async function rawClient(t: Test, port: number, clientId: string, clean: boolean, extra: object = {}) {
  const { client, connack } = await RawClient.connected(port, { clientId, clean, ...extra });
  t.teardown(() => client.destroy());
  return { c: client, connack };
}

/** QoS 1 PUBLISHes, one after the other, each PUBACKed before the next. */
export async function publishQos1(c: RawClient, topic: string, payloads: string[], retain = false): Promise<void> {
  let id = 1;
  for (const payload of payloads) {
    c.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain, dup: false, messageId: id++ });
    await c.expect('puback');
  }
}

/** The next `n` PUBLISHes; QoS 1 ones acknowledged unless `ack` is false. */
export async function receivePublishes(c: RawClient, n: number, ack = true): Promise<Publish[]> {
  const out: Publish[] = [];
  while (out.length < n) {
    const p = await c.next();
    if (p.cmd !== 'publish') throw new Error(`expected publish, got ${p.cmd}`);
    if (ack && p.qos === 1) c.send({ cmd: 'puback', messageId: p.messageId as number });
    out.push(p);
  }
  return out;
}

export const numbered = (n: number, prefix = 'm'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
export const texts = (ps: Publish[]): string[] => ps.map((p) => p.payload.toString());
