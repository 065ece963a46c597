/**
 * MQTT 5 flows for the raw test client: CONNECT with properties, SUBSCRIBE with subscription
 * options and identifiers, PUBLISH with properties (answering the acknowledgements and
 * returning the reason codes), and reading up to a PINGRESP.
 */
import type { AckPacket, Packet, Properties, QoS, Subscription } from '@tern/protocol';
import { RawClient, type TestBroker } from '@tern/testkit';
import { packetId } from './flows.js';

type ConnectFields = Partial<Extract<Packet, { cmd: 'connect' }>>;
type Connack = Extract<Packet, { cmd: 'connack' }>;
type Teardown = { teardown: (fn: () => unknown) => void };

/** A raw MQTT 5 client, CONNACKed with success, destroyed when the test `t` ends. */
export async function connect5(
  t: Teardown,
  port: number,
  clientId: string,
  fields: ConnectFields = {},
): Promise<{ client: RawClient; connack: Connack }> {
  const { client, connack } = await RawClient.connected(port, { protocolVersion: 5, clientId, ...fields });
  t.teardown(() => client.destroy());
  if (connack.returnCode !== 0) throw new Error(`${clientId}: CONNACK 0x${connack.returnCode.toString(16)}`);
  return { client, connack };
}

/** A raw MQTT 3.1.1 client, destroyed when the test `t` ends. */
export async function connect4(t: Teardown, port: number, clientId: string): Promise<RawClient> {
  const { client, connack } = await RawClient.connected(port, { protocolVersion: 4, clientId });
  t.teardown(() => client.destroy());
  if (connack.returnCode !== 0) throw new Error(`${clientId}: CONNACK ${connack.returnCode}`);
  return client;
}

/**
 * SUBSCRIBE (MQTT 5 options per filter; `id` the subscription identifier of the packet) and
 * wait for the SUBACK; returns its reason codes. The client must have nothing else pending.
 */
export async function subscribe5(client: RawClient, subscriptions: Subscription[], id?: number): Promise<number[]> {
  const messageId = packetId();
  const properties: Properties | undefined = id === undefined ? undefined : { subscriptionIdentifiers: [id] };
  client.send({ cmd: 'subscribe', messageId, subscriptions, properties });
  const suback = await client.expect('suback');
  if (suback.messageId !== messageId) throw new Error(`SUBACK for ${suback.messageId}, expected ${messageId}`);
  return suback.granted;
}

export interface Publish5Options {
  retain?: boolean;
  properties?: Properties;
}

/**
 * PUBLISH and wait for its acknowledgement: the PUBACK (QoS 1) or the PUBREC (QoS 2, after
 * which PUBREL/PUBCOMP are exchanged unless the PUBREC refused it); null for QoS 0. The client
 * must be a publisher only (the next packet is taken as the acknowledgement).
 */
export async function publish5(
  client: RawClient,
  topic: string,
  payload: string | Buffer,
  qos: QoS = 0,
  options: Publish5Options = {},
): Promise<AckPacket<'puback'> | AckPacket<'pubrec'> | null> {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const base = { cmd: 'publish' as const, topic, payload: body, retain: options.retain ?? false, dup: false };
  const properties = options.properties;
  if (qos === 0) {
    client.send({ ...base, qos, properties });
    return null;
  }
  const messageId = packetId();
  client.send({ ...base, qos, messageId, properties });
  if (qos === 1) {
    const puback = await client.expect('puback');
    if (puback.messageId !== messageId) throw new Error(`PUBACK for ${puback.messageId}, expected ${messageId}`);
    return puback;
  }
  const pubrec = await client.expect('pubrec');
  if (pubrec.messageId !== messageId) throw new Error(`PUBREC for ${pubrec.messageId}, expected ${messageId}`);
  if ((pubrec.reasonCode ?? 0) >= 0x80) return pubrec;
  client.send({ cmd: 'pubrel', messageId });
  await client.expect('pubcomp');
  return pubrec;
}

/**
 * Every packet received before the PINGRESP that answers a PINGREQ sent now: what the broker
 * wrote to this client before it read the PINGREQ. Nothing is acknowledged.
 */
export async function untilPingresp(client: RawClient): Promise<Packet[]> {
  client.send({ cmd: 'pingreq' });
  const got: Packet[] = [];
  for (let p = await client.next(); p.cmd !== 'pingresp'; p = await client.next()) got.push(p);
  return got;
}

/** The payloads (as text) of the PUBLISH packets among `packets`; other packets as `<cmd>`. */
export const payloads = (packets: readonly Packet[]): string[] =>
  packets.map((p) => (p.cmd === 'publish' ? p.payload.toString('utf8') : `<${p.cmd}>`));

/**
 * With routing workers, connects (ids `${baseId}-1`, `${baseId}-2`, ..., several at once, as
 * the kernel hands a burst of connections to more than one worker) until one is served by
 * another worker than the session of `otherId`, so the messages between the two cross from
 * one worker to the other; the others are closed. In one thread, connects once as `baseId`.
 */
export async function onAnotherWorker<C>(
  tb: TestBroker,
  otherId: string,
  baseId: string,
  connect: (clientId: string) => Promise<C>,
  close: (client: C) => unknown,
): Promise<{ client: C; clientId: string }> {
  if (tb.workers === 0) return { client: await connect(baseId), clientId: baseId };
  const other = await tb.session(otherId);
  if (other === null) throw new Error(`no session ${otherId}`);
  let n = 0;
  for (let round = 0; round < 20; round++) {
    const ids = Array.from({ length: 8 }, () => `${baseId}-${++n}`);
    const clients = await Promise.all(ids.map(connect));
    let found: { client: C; clientId: string } | null = null;
    for (let i = 0; i < ids.length; i++) {
      const clientId = ids[i] as string;
      const client = clients[i] as C;
      if (found === null && (await tb.session(clientId))?.worker !== other.worker) found = { client, clientId };
      else await close(client);
    }
    if (found !== null) return found;
  }
  throw new Error(`no connection landed on another worker than ${otherId}'s`);
}

/** connect5 through onAnotherWorker: a raw MQTT 5 client served by another worker than `otherId`'s session. */
export function connect5Elsewhere(
  t: Teardown,
  tb: TestBroker,
  otherId: string,
  baseId: string,
  fields: ConnectFields = {},
): Promise<{ client: RawClient; clientId: string }> {
  return onAnotherWorker(
    tb,
    otherId,
    baseId,
    async (clientId) => (await connect5(t, tb.port, clientId, fields)).client,
    (client) => client.destroy(),
  );
}
