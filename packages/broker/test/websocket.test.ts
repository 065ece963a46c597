/**
 * MQTT over WebSocket and WSS: MQTT.js over ws:// and wss:// (path /mqtt, subprotocol mqtt),
 * delivery across transports (TCP <-> WebSocket, QoS 0/1/2, retained), any framing of
 * packets in WebSocket messages, the path and subprotocol checks, a malformed packet closing
 * only its connection, and maxConnections counting every listener.
 */
import { readFileSync } from 'node:fs';
import { encode, type Packet, PacketDecoder } from '@tern/protocol';
import { makeTestCertificates, startBroker, type TestBroker } from '@tern/testkit';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import t from 'tap';
import { WebSocket } from 'ws';
import { Inbox } from './support/mqttjs.js';

const certs = await makeTestCertificates();
t.teardown(() => certs.remove());
const ca = readFileSync(certs.ca);

type Teardown = { teardown: (fn: () => unknown) => void };

const WS_ON = {
  wsEnabled: true,
  wsPort: 0,
  wssEnabled: true,
  wssPort: 0,
  tlsCert: certs.server.cert,
  tlsKey: certs.server.key,
};

async function startWsBroker(t: Teardown, options = {}): Promise<TestBroker> {
  const tb = await startBroker({ ...WS_ON, ...options });
  t.teardown(() => tb.stop());
  return tb;
}

/** An MQTT.js client on `url`, ended when the test ends. */
async function connectUrl(t: Teardown, url: string, clientId: string, extra: IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { ca, clientId, protocolVersion: 4, reconnectPeriod: 0, ...extra });
  t.teardown(() => client.endAsync(true));
  return client;
}

/** A WebSocket speaking raw MQTT bytes: what client libraries never send (odd framing, bad packets). */
class RawWsClient {
  readonly ws: WebSocket;
  private readonly decoder: PacketDecoder;
  private readonly inbox: Packet[] = [];
  private waiter: ((p: Packet) => void) | null = null;
  readonly closed: Promise<number>;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.decoder = new PacketDecoder((p) => {
      const w = this.waiter;
      this.waiter = null;
      if (w !== null) w(p);
      else this.inbox.push(p);
    });
    ws.on('message', (data: Buffer) => this.decoder.push(data));
    this.closed = new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
  }

  static open(t: Teardown, port: number, path = '/mqtt', protocols: string[] = ['mqtt']): Promise<RawWsClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols);
    t.teardown(() => ws.terminate());
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RawWsClient(ws)));
      ws.once('error', reject);
    });
  }

  /** Each Buffer leaves as one binary WebSocket message. */
  sendMessages(...messages: Buffer[]): void {
    for (const m of messages) this.ws.send(m, { binary: true });
  }

  next(): Promise<Packet> {
    const p = this.inbox.shift();
    if (p !== undefined) return Promise.resolve(p);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
}

const connectBytes = (clientId: string): Buffer =>
  encode({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 0, clientId }, 4);

/** Cuts `bytes` into pieces of at most `size` bytes. */
function pieces(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

t.test('MQTT.js over ws:// and wss:// on /mqtt with the mqtt subprotocol', async (t) => {
  const tb = await startWsBroker(t);
  const { ws: wsPort, wss: wssPort } = tb.ports as { ws: number; wss: number };
  for (const [protocol, port] of [
    ['ws', wsPort],
    ['wss', wssPort],
  ] as const) {
    const line = await tb.logs.waitFor((l) => l.msg === 'listening' && l.protocol === protocol);
    t.match(line, { host: '127.0.0.1', port, path: '/mqtt' }, `one line names the ${protocol} listener`);
  }

  const sub = await connectUrl(t, `ws://127.0.0.1:${wsPort}/mqtt`, 'ws-sub');
  const inbox = new Inbox(sub);
  await sub.subscribeAsync('web/#', { qos: 1 });
  const pub = await connectUrl(t, `wss://127.0.0.1:${wssPort}/mqtt`, 'wss-pub');
  await pub.publishAsync('web/secure', 'over wss', { qos: 1 });
  t.match(await inbox.next(), { topic: 'web/secure', payload: 'over wss', qos: 1 });
  await pub.publishAsync('web/big', 'x'.repeat(200_000), { qos: 1 });
  t.match(await inbox.next(), { topic: 'web/big', payload: 'x'.repeat(200_000) }, 'a payload spanning many frames');

  const stats = await tb.stats();
  t.equal(stats.counters.connectionsAccepted.ws, 1, 'counted under listener="ws"');
  t.equal(stats.counters.connectionsAccepted.wss, 1, 'counted under listener="wss"');
  const accepted = tb.logs.lines.filter((l) => l.msg === 'connection accepted');
  t.ok(
    accepted.every((l) => typeof l.remote === 'string' && l.remote.startsWith('127.0.0.1:')),
    'each connection logs its remote address',
  );
});

t.test('across transports: TCP <-> WebSocket at QoS 0, 1 and 2, and retained messages', async (t) => {
  const tb = await startWsBroker(t);
  const wsUrl = `ws://127.0.0.1:${tb.ports.ws}/mqtt`;
  const tcp = await connectUrl(t, `mqtt://127.0.0.1:${tb.port}`, 'x-tcp');
  const web = await connectUrl(t, wsUrl, 'x-ws');
  const tcpInbox = new Inbox(tcp);
  const webInbox = new Inbox(web);
  await web.subscribeAsync('to-web/#', { qos: 2 });
  await tcp.subscribeAsync('to-tcp/#', { qos: 2 });
  for (const qos of [0, 1, 2] as const) {
    await tcp.publishAsync(`to-web/q${qos}`, `tcp says ${qos}`, { qos });
    t.match(
      await webInbox.next(),
      { topic: `to-web/q${qos}`, payload: `tcp says ${qos}`, qos },
      `TCP -> WS, QoS ${qos}`,
    );
    await web.publishAsync(`to-tcp/q${qos}`, `ws says ${qos}`, { qos });
    t.match(
      await tcpInbox.next(),
      { topic: `to-tcp/q${qos}`, payload: `ws says ${qos}`, qos },
      `WS -> TCP, QoS ${qos}`,
    );
  }

  await tcp.publishAsync('kept/by-tcp', 'retained from TCP', { qos: 1, retain: true });
  await web.publishAsync('kept/by-ws', 'retained from WS', { qos: 1, retain: true });
  const late = await connectUrl(t, wsUrl, 'x-late');
  const lateInbox = new Inbox(late);
  await late.subscribeAsync('kept/#', { qos: 1 });
  const retained = [await lateInbox.next(), await lateInbox.next()].sort((a, b) => a.topic.localeCompare(b.topic));
  t.match(retained, [
    { topic: 'kept/by-tcp', payload: 'retained from TCP', retain: true },
    { topic: 'kept/by-ws', payload: 'retained from WS', retain: true },
  ]);
  const lateTcp = await connectUrl(t, `mqtt://127.0.0.1:${tb.port}`, 'x-late-tcp');
  const lateTcpInbox = new Inbox(lateTcp);
  await lateTcp.subscribeAsync('kept/by-ws', { qos: 1 });
  t.match(
    await lateTcpInbox.next(),
    { topic: 'kept/by-ws', retain: true },
    'a WS retained message reaches a TCP subscriber',
  );
});

t.test('any framing: a packet over several messages, several packets in one message', async (t) => {
  const tb = await startWsBroker(t);
  const client = await RawWsClient.open(t, tb.ports.ws as number, '/mqtt', ['mqtt']);
  t.equal(client.ws.protocol, 'mqtt', 'the mqtt subprotocol is chosen [MQTT-6.0.0-3]');
  // CONNECT cut into 3-byte messages.
  client.sendMessages(...pieces(connectBytes('raw-ws'), 3));
  t.match(await client.next(), { cmd: 'connack', returnCode: 0 }, 'a CONNECT in pieces is one CONNECT');

  // SUBSCRIBE, a PUBLISH to it and a PINGREQ in one message.
  const subscribe = encode({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'raw/#', qos: 0 }] }, 4);
  const publish = encode(
    { cmd: 'publish', topic: 'raw/one', payload: Buffer.from('in one message'), qos: 0, retain: false, dup: false },
    4,
  );
  const ping = encode({ cmd: 'pingreq' }, 4);
  client.sendMessages(Buffer.concat([subscribe, publish, ping]));
  // All three are handled (with routing workers the SUBACK may wait for the other workers to
  // learn the route, so the answers' order is not the point here).
  const answers = [await client.next(), await client.next(), await client.next()];
  const byCmd = new Map(answers.map((p) => [p.cmd, p]));
  t.same([...byCmd.keys()].sort(), ['pingresp', 'publish', 'suback'], 'three packets from one message');
  t.match(byCmd.get('suback'), { messageId: 1, granted: [0] });
  t.match(byCmd.get('publish'), { topic: 'raw/one' });
  t.equal((byCmd.get('publish') as { payload: Buffer }).payload.toString(), 'in one message');

  // The end of one packet and the start of the next in each message.
  const two = Buffer.concat([
    encode(
      { cmd: 'publish', topic: 'raw/two', payload: Buffer.from('straddling'), qos: 0, retain: false, dup: false },
      4,
    ),
    encode({ cmd: 'pingreq' }, 4),
  ]);
  client.sendMessages(two.subarray(0, 5), two.subarray(5, two.length - 1), two.subarray(two.length - 1));
  t.match(await client.next(), { cmd: 'publish', topic: 'raw/two' });
  t.match(await client.next(), { cmd: 'pingresp' });

  // One message sent as WebSocket fragments (continuation frames).
  const fragmented = encode(
    { cmd: 'publish', topic: 'raw/fragments', payload: Buffer.from('in fragments'), qos: 0, retain: false, dup: false },
    4,
  );
  client.ws.send(fragmented.subarray(0, 4), { binary: true, fin: false });
  client.ws.send(fragmented.subarray(4, 9), { binary: true, fin: false });
  client.ws.send(fragmented.subarray(9), { binary: true, fin: true });
  t.match(await client.next(), { cmd: 'publish', topic: 'raw/fragments' });
});

t.test('a wrong path or subprotocol is refused; a plain HTTP request gets an answer', async (t) => {
  const tb = await startWsBroker(t);
  const port = tb.ports.ws as number;
  await t.rejects(RawWsClient.open(t, port, '/not-mqtt'), /Unexpected server response: 404/, 'another path: 404');
  await t.rejects(
    RawWsClient.open(t, port, '/mqtt', ['chat']),
    /Server sent no subprotocol/,
    'no mqtt subprotocol offered: none chosen, the client gives up',
  );
  const old = await RawWsClient.open(t, port, '/mqtt', ['mqttv3.1']);
  t.equal(old.ws.protocol, 'mqttv3.1', "an MQTT 3.1 client's subprotocol is accepted too");
  const plain = await fetch(`http://127.0.0.1:${port}/mqtt`);
  t.equal(plain.status, 426, 'a plain request on the path: 426 Upgrade Required');
  const other = await fetch(`http://127.0.0.1:${port}/`);
  t.equal(other.status, 404);
  const ok = await RawWsClient.open(t, port, '/mqtt?token=abc');
  ok.sendMessages(connectBytes('query-string'));
  t.match(await ok.next(), { cmd: 'connack', returnCode: 0 }, 'a query string does not change the path');
});

t.test('a malformed packet or a text frame closes that WebSocket only, with a log line', async (t) => {
  const tb = await startWsBroker(t);
  const port = tb.ports.ws as number;
  const bystander = await connectUrl(t, `ws://127.0.0.1:${port}/mqtt`, 'bystander');

  const bad = await RawWsClient.open(t, port);
  bad.sendMessages(connectBytes('malformed-ws'));
  t.match(await bad.next(), { cmd: 'connack', returnCode: 0 });
  bad.sendMessages(Buffer.from([0x00, 0x00]));
  await bad.closed;
  const line = await tb.logs.waitFor((l) => l.msg.startsWith('closing connection') && l.clientId === 'malformed-ws');
  t.match(line, { code: 'TERN_PROTO_PACKET_TYPE', remote: /^127\.0\.0\.1:\d+$/ }, 'logged with its code and address');

  const text = await RawWsClient.open(t, port);
  text.sendMessages(connectBytes('text-frame'));
  t.match(await text.next(), { cmd: 'connack', returnCode: 0 });
  text.ws.send('not binary');
  await text.closed;
  const textLine = await tb.logs.waitFor((l) => l.msg.startsWith('connection closed') && l.clientId === 'text-frame');
  t.match(textLine, { err: /text frame/ }, 'a text frame closes the connection [MQTT-6.0.0-1]');

  const inbox = new Inbox(bystander);
  await bystander.subscribeAsync('still/here', { qos: 1 });
  await bystander.publishAsync('still/here', 'yes', { qos: 1 });
  t.match(await inbox.next(), { topic: 'still/here' }, 'the other WebSocket client is unaffected');
});

t.test('maxConnections counts TCP, TLS, WS and WSS connections together', async (t) => {
  const tb = await startWsBroker(t, { maxConnections: 2 });
  await connectUrl(t, `mqtt://127.0.0.1:${tb.port}`, 'limit-tcp');
  await connectUrl(t, `ws://127.0.0.1:${tb.ports.ws}/mqtt`, 'limit-ws');
  const wssUrl = `wss://127.0.0.1:${tb.ports.wss}/mqtt`;
  await t.rejects(
    mqtt.connectAsync(wssUrl, { ca, clientId: 'limit-wss', reconnectPeriod: 0 }, false),
    'a third connection (WSS) is refused',
  );
  const line = await tb.logs.waitFor('connection refused: maxConnections reached');
  t.match(line, { listener: 'wss', limit: 2 });
  t.equal((await tb.stats()).counters.connectionsRejected['max-connections'], 1);
});
