/** Small helpers for tests driving MQTT.js clients and the mosquitto command-line tools. */
import { execFile } from 'node:child_process';
import mqtt, { type MqttClient } from 'mqtt';
import { SETTLE_TOPIC } from './flows.js';

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  qos: number;
}

/**
 * Buffers every message an MQTT.js client receives, so a test can take them in order without
 * missing one that arrived before it asked.
 */
export class Inbox {
  private readonly items: Received[] = [];
  private waiter: ((m: Received) => void) | null = null;

  constructor(client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      const m = { topic, payload: payload.toString('utf8'), retain: packet.retain, qos: packet.qos };
      const w = this.waiter;
      if (w !== null) {
        this.waiter = null;
        w(m);
      } else {
        this.items.push(m);
      }
    });
  }

  next(): Promise<Received> {
    const m = this.items.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Every message up to and including the first on `topic`. */
  async until(topic: string): Promise<Received[]> {
    const out: Received[] = [];
    for (;;) {
      const m = await this.next();
      out.push(m);
      if (m.topic === topic) return out;
    }
  }
}

export interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed after `timeoutMs`, a guard against a hung test). */
export function run(
  cmd: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: options.timeoutMs ?? 15_000, env: options.env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** An MQTT.js 3.1.1 client on the test broker, ended when the test `t` ends. */
export async function connectMqttjs(
  t: { teardown: (fn: () => unknown) => void },
  port: number,
  clientId: string,
): Promise<MqttClient> {
  const client = await mqtt.connectAsync({ port, host: '127.0.0.1', clientId, protocolVersion: 4, reconnectPeriod: 0 });
  t.teardown(() => client.endAsync());
  return client;
}

/**
 * Resolves once every routing worker has handled everything `client` published before (see
 * `settled` in flows.ts: an empty retained QoS 1 PUBLISH is acknowledged after a barrier).
 */
export async function settledMqttjs(client: MqttClient): Promise<void> {
  await client.publishAsync(SETTLE_TOPIC, '', { qos: 1, retain: true });
}
