/**
 * Packet flows the session, will and takeover tests repeat: publishing with every
 * acknowledgement awaited, receiving while answering the broker's QoS 1/2 flows, and
 * waiting until the broker has finished with a connection.
 */
import type { PublishPacket, QoS } from '@tern/protocol';
import type { RawClient, TestBroker } from '@tern/testkit';

let nextId = 0;

/** A packet id for a test publisher: cycles 1..65535. */
export function packetId(): number {
  nextId = (nextId % 0xffff) + 1;
  return nextId;
}

/**
 * Publishes and waits until the broker has taken responsibility: PUBACK for QoS 1,
 * PUBREC/PUBREL/PUBCOMP for QoS 2. For QoS 0 it returns at once. The client must be a
 * publisher only (every packet it receives here is taken as an acknowledgement).
 */
export async function publish(
  client: RawClient,
  topic: string,
  payload: string | Buffer,
  qos: QoS = 0,
  retain = false,
): Promise<void> {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  if (qos === 0) {
    client.send({ cmd: 'publish', topic, payload: body, qos, retain, dup: false });
    return;
  }
  const messageId = packetId();
  client.send({ cmd: 'publish', topic, payload: body, qos, retain, dup: false, messageId });
  if (qos === 1) {
    await client.expect('puback');
    return;
  }
  await client.expect('pubrec');
  client.send({ cmd: 'pubrel', messageId });
  await client.expect('pubcomp');
}

/**
 * The next PUBLISH sent to `client`, answered as a subscriber must: PUBACK for QoS 1,
 * PUBREC for QoS 2 (and PUBCOMP for every PUBREL met on the way). With `ack` false the
 * PUBLISH is left unacknowledged (it stays in flight at the broker).
 */
export async function receive(client: RawClient, ack = true): Promise<PublishPacket> {
  for (;;) {
    const p = await client.next();
    if (p.cmd === 'pubrel') {
      client.send({ cmd: 'pubcomp', messageId: p.messageId });
      continue;
    }
    if (p.cmd !== 'publish') throw new Error(`expected publish, got ${p.cmd}: ${JSON.stringify(p)}`);
    if (ack && p.qos === 1) client.send({ cmd: 'puback', messageId: p.messageId as number });
    if (ack && p.qos === 2) client.send({ cmd: 'pubrec', messageId: p.messageId as number });
    return p;
  }
}

/**
 * Every PUBLISH received up to and including the first one on `markerTopic`: proves what
 * did not arrive before a later message, relying on per-connection ordering.
 */
export async function receiveUntil(client: RawClient, markerTopic: string): Promise<PublishPacket[]> {
  const out: PublishPacket[] = [];
  for (;;) {
    const p = await receive(client);
    out.push(p);
    if (p.topic === markerTopic) return out;
  }
}

/**
 * Every PUBLISH received until one has come on each of `topics`, in whatever order they
 * arrive: messages from different publishers (or published by the broker on different
 * routing workers) have no order between them [MQTT-4.6.0-5] covers one publisher only.
 */
export async function receiveTopics(client: RawClient, topics: readonly string[]): Promise<PublishPacket[]> {
  const missing = new Set(topics);
  const out: PublishPacket[] = [];
  while (missing.size > 0) {
    const p = await receive(client);
    out.push(p);
    missing.delete(p.topic);
  }
  return out;
}

/** SUBSCRIBE and wait for the SUBACK; returns the granted QoS list. */
export async function subscribe(client: RawClient, filters: Record<string, QoS>): Promise<number[]> {
  const messageId = packetId();
  client.send({
    cmd: 'subscribe',
    messageId,
    subscriptions: Object.entries(filters).map(([topic, qos]) => ({ topic, qos })),
  });
  const suback = await client.expect('suback');
  if (suback.messageId !== messageId) throw new Error(`SUBACK for ${suback.messageId}, expected ${messageId}`);
  return suback.granted;
}

/**
 * Resolves once the broker has finished with the live connection of `clientId` (its close
 * handler has run: will published or discarded, session detached). Resolves at once when
 * no live connection has that id.
 */
export async function serverClosed(tb: TestBroker, clientId: string): Promise<void> {
  const broker = tb.broker;
  if (broker !== null) {
    const client = broker.clients.get(clientId);
    if (client === undefined || client.conn.isClosed) return;
    // The connection's own 'close' listener (registered first) runs the close handler.
    return new Promise((resolve) => client.conn.socket.once('close', () => resolve()));
  }
  // Routing workers: the session detaches from its connection in the same turn as the close
  // handler runs (and a transient one ends), so ask the workers until it has: each answer
  // is a round trip to every worker, not a timer.
  for (;;) {
    const session = await tb.session(clientId);
    if (session === null || !session.online) return;
  }
}

/** A topic no test subscribes to (and that no leading wildcard matches [MQTT-4.7.2-1]). */
export const SETTLE_TOPIC = '$tern-test/settle';

/**
 * Resolves once every routing worker has handled everything `client` published before: a
 * retained PUBLISH is acknowledged only after every other worker has handled what its
 * worker sent them before it (a barrier, handlers/publish.ts). Its payload is empty, so it
 * stores nothing. A PUBACK alone proves only that the publisher's own worker has routed a
 * message; in one thread the two are the same. `client` must be a publisher only.
 */
export function settled(client: RawClient): Promise<void> {
  return publish(client, SETTLE_TOPIC, '', 1, true);
}

export const text = (p: PublishPacket): string => p.payload.toString('utf8');
