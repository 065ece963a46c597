/**
 * A node of several routing workers behaves as one broker: delivery, retained messages,
 * takeover, persistent sessions and wills across workers, forwarding only where needed, and
 * a worker crash that loses no session. Clients are placed on a chosen worker by opening
 * sockets until the kernel hands one to that worker (each worker logs the sockets it accepts).
 */

import { TernMetrics } from '@tern/broker';
import type { Packet } from '@tern/protocol';
import { RawClient, startBroker, type TestBroker } from '@tern/testkit';
import t, { type Test } from 'tap';

type Connect = Partial<Extract<Packet, { cmd: 'connect' }>>;

/** A raw client on worker `worker`, CONNECTed with `connect`. */
async function clientOn(t: Test, tb: TestBroker, worker: number, connect: Connect): Promise<RawClient> {
  // The kernel gives a connection to whichever worker is waiting first; on a busy machine one
  // worker of four may win rarely, so allow many tries (each is a loopback connect).
  for (let attempt = 0; attempt < 2000; attempt++) {
    const client = await RawClient.open(tb.port);
    const remote = `127.0.0.1:${client.socket.localPort}`;
    const accepted = await tb.logs.waitFor((l) => l.msg === 'connection accepted' && l.remote === remote);
    if (accepted.worker !== worker) {
      client.destroy();
      continue;
    }
    t.teardown(() => client.destroy());
    const connack = await client.connect(connect);
    t.equal(connack.returnCode, 0, `${connect.clientId} connected on worker ${worker}`);
    return client;
  }
  throw new Error(`no socket landed on worker ${worker} in 2000 tries`);
}

async function subscribe(client: RawClient, topic: string, qos: 0 | 1 | 2, messageId = 1): Promise<void> {
  client.send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] });
  await client.expect('suback');
}

/** Publishes and completes the flow for its QoS (PUBACK, or PUBREC/PUBREL/PUBCOMP). */
async function publish(
  client: RawClient,
  topic: string,
  payload: string,
  qos: 0 | 1 | 2,
  messageId: number,
  retain = false,
): Promise<void> {
  client.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false, messageId });
  if (qos === 1) await client.expect('puback');
  if (qos === 2) {
    await client.expect('pubrec');
    client.send({ cmd: 'pubrel', messageId });
    await client.expect('pubcomp');
  }
}

/**
 * The next PUBLISH, acknowledged as its QoS requires. A QoS 2 flow is answered as it goes
 * (PUBREC now, PUBCOMP when the PUBREL comes), since other PUBLISHes may arrive in between.
 */
async function receive(client: RawClient): Promise<Extract<Packet, { cmd: 'publish' }>> {
  for (;;) {
    const p = await client.next();
    if (p.cmd === 'pubrel') {
      client.send({ cmd: 'pubcomp', messageId: p.messageId });
      continue;
    }
    if (p.cmd !== 'publish') throw new Error(`expected publish, got ${p.cmd}`);
    if (p.qos === 1) client.send({ cmd: 'puback', messageId: p.messageId as number });
    if (p.qos === 2) client.send({ cmd: 'pubrec', messageId: p.messageId as number });
    return p;
  }
}

for (const workers of [2, 4]) {
  t.test(`a node of ${workers} routing workers`, async (t) => {
    const tb = await startBroker({ workers });
    t.teardown(() => tb.stop());
    const last = workers - 1;

    await t.test('QoS 0, 1 and 2 cross workers; QoS 2 arrives once', async (t) => {
      const sub = await clientOn(t, tb, 0, { clientId: 'x-sub' });
      await subscribe(sub, 'x/#', 2);
      const pub = await clientOn(t, tb, last, { clientId: 'x-pub' });
      await publish(pub, 'x/0', 'zero', 0, 1);
      await publish(pub, 'x/1', 'one', 1, 2);
      await publish(pub, 'x/2', 'two', 2, 3);
      await publish(pub, 'x/end', 'end', 0, 4);
      const got: string[] = [];
      for (;;) {
        const p = await receive(sub);
        got.push(`${p.topic}:${p.qos}:${p.payload.toString()}`);
        if (p.topic === 'x/end') break;
      }
      t.same(got, ['x/0:0:zero', 'x/1:1:one', 'x/2:2:two', 'x/end:0:end'], 'in order, each once');
    });

    await t.test('a publish goes once to each interested worker and never to the others', async (t) => {
      const before = (await tb.supervisor?.stats()) ?? [];
      const sub = await clientOn(t, tb, 0, { clientId: 'f-sub' });
      await subscribe(sub, 'f/#', 0);
      const pub = await clientOn(t, tb, last, { clientId: 'f-pub' });
      for (let i = 0; i < 10; i++) await publish(pub, `f/${i}`, String(i), 1, i + 1);
      for (let i = 0; i < 10; i++) t.equal((await receive(sub)).payload.toString(), String(i));
      const after = (await tb.supervisor?.stats()) ?? [];
      const inOf = (list: typeof after, w: number) =>
        list.find((s) => s.worker === String(w))?.counters.messagesForwarded.in ?? 0;
      const outOf = (list: typeof after, w: number) =>
        list.find((s) => s.worker === String(w))?.counters.messagesForwarded.out ?? 0;
      t.equal(outOf(after, last) - outOf(before, last), 10, 'the publisher’s worker forwarded each message once');
      t.equal(inOf(after, 0) - inOf(before, 0), 10, 'the subscriber’s worker received each once');
      for (let w = 1; w < last; w++) t.equal(inOf(after, w) - inOf(before, w), 0, `worker ${w} received none`);
    });

    await t.test('a retained message published on one worker reaches a new subscriber on another', async (t) => {
      const pub = await clientOn(t, tb, 0, { clientId: 'r-pub' });
      await publish(pub, 'r/a', 'kept', 1, 1, true);
      const sub = await clientOn(t, tb, last, { clientId: 'r-sub' });
      await subscribe(sub, 'r/#', 1);
      const p = await receive(sub);
      t.same([p.topic, p.payload.toString(), p.retain], ['r/a', 'kept', true], '[MQTT-3.3.1-6]');

      await publish(pub, 'r/a', '', 1, 2, true);
      await receive(sub); // the deletion itself is delivered to the existing subscriber
      const late = await clientOn(t, tb, last, { clientId: 'r-late' });
      late.send({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [
          { topic: 'r/a', qos: 0 },
          { topic: 'r/marker', qos: 0 },
        ],
      });
      await late.expect('suback');
      await publish(pub, 'r/marker', 'm', 0, 3);
      t.equal((await receive(late)).topic, 'r/marker', 'the deleted retained message is gone on every worker');
    });

    await t.test(
      'takeover across workers: the old connection closes, its will fires once, the session moves',
      async (t) => {
        const watcher = await clientOn(t, tb, last, { clientId: 'tk-watch' });
        await subscribe(watcher, 'tk-will/#', 1);
        const first = await clientOn(t, tb, 0, {
          clientId: 'tk',
          clean: false,
          will: { topic: 'tk-will/tk', payload: Buffer.from('gone'), qos: 1, retain: false },
        });
        await subscribe(first, 'tk/#', 1);
        const second = await clientOn(t, tb, last, { clientId: 'tk', clean: false });
        await first.waitClosed();
        const will = await receive(watcher);
        t.same([will.topic, will.payload.toString()], ['tk-will/tk', 'gone'], 'the will of the taken-over connection');
        const info = await tb.session('tk');
        t.equal(info?.worker, last, 'the session lives on the new worker');
        t.same(info?.subscriptions, [['tk/#', 1]], 'with its subscriptions');
        const pub = await clientOn(t, tb, 0, { clientId: 'tk-pub' });
        await publish(pub, 'tk/1', 'after', 1, 1);
        await publish(pub, 'tk-will/marker', 'm', 1, 2);
        t.equal((await receive(second)).payload.toString(), 'after', 'the moved subscription delivers');
        t.equal((await receive(watcher)).topic, 'tk-will/marker', 'the will was published once');
      },
    );

    await t.test(
      'a persistent session resumes on another worker: queue in order, inflight resent with DUP',
      async (t) => {
        const away = await clientOn(t, tb, 0, { clientId: 'ps', clean: false });
        await subscribe(away, 'ps/#', 1);
        const pub = await clientOn(t, tb, last, { clientId: 'ps-pub' });
        await publish(pub, 'ps/0', '0', 1, 1);
        const unacked = await away.expect('publish');
        t.equal(unacked.payload.toString(), '0', 'delivered, never acknowledged');
        away.destroy();
        await away.waitClosed();
        for (let i = 1; i <= 20; i++) await publish(pub, `ps/${i}`, String(i), 1, i + 1);
        const back = await clientOn(t, tb, last, { clientId: 'ps', clean: false });
        const resent = await receive(back);
        t.same(
          [resent.payload.toString(), resent.dup],
          ['0', true],
          'the inflight message first, DUP=1 [MQTT-4.4.0-1]',
        );
        const rest: string[] = [];
        for (let i = 1; i <= 20; i++) rest.push((await receive(back)).payload.toString());
        t.same(
          rest,
          Array.from({ length: 20 }, (_, i) => String(i + 1)),
          'every queued message, in order',
        );
        t.equal((await tb.session('ps'))?.worker, last);
      },
    );

    await t.test('a will is published once, to subscribers on every worker', async (t) => {
      const watchers = [];
      for (let w = 0; w < workers; w++) {
        const c = await clientOn(t, tb, w, { clientId: `will-watch-${w}` });
        await subscribe(c, 'will/#', 1);
        watchers.push(c);
      }
      const dying = await clientOn(t, tb, 0, {
        clientId: 'will-client',
        will: { topic: 'will/client', payload: Buffer.from('offline'), qos: 1, retain: false },
      });
      dying.destroy();
      const pub = await clientOn(t, tb, last, { clientId: 'will-pub' });
      for (const c of watchers) t.equal((await receive(c)).payload.toString(), 'offline');
      await publish(pub, 'will/marker', 'm', 1, 1);
      for (const c of watchers) t.equal((await receive(c)).topic, 'will/marker', 'no second copy');
    });

    await t.test('metrics cover every worker, each series labelled with its worker', async (t) => {
      const supervisor = tb.supervisor;
      if (supervisor === null) throw new Error('a node of workers has a supervisor');
      const clients = [];
      for (let w = 0; w < workers; w++) clients.push(await clientOn(t, tb, w, { clientId: `m-${w}` }));
      const metrics = new TernMetrics({
        nodeName: 'n1',
        source: { snapshots: () => supervisor.stats() },
        defaultMetrics: false,
      });
      const text = await metrics.scrape();
      for (let w = 0; w < workers; w++) {
        t.match(
          text,
          new RegExp(`tern_clients_connected\\{[^}]*worker="${w}"[^}]*\\} [1-9]`),
          `worker ${w} reports its clients`,
        );
      }
      t.match(text, /node="n1"/);
    });

    await t.test('a crashed worker restarts; its clients reconnect and find their sessions', async (t) => {
      const supervisor = tb.supervisor;
      if (supervisor === null) throw new Error('a node of workers has a supervisor');
      const bystander = await clientOn(t, tb, 0, { clientId: 'crash-bystander' });
      await subscribe(bystander, 'crash-will/#', 1);
      const victim = await clientOn(t, tb, last, {
        clientId: 'crash-victim',
        clean: false,
        will: { topic: 'crash-will/victim', payload: Buffer.from('lost'), qos: 1, retain: false },
      });
      await subscribe(victim, 'crash/#', 1);
      supervisor.crash(last);
      await victim.waitClosed();
      t.equal((await receive(bystander)).payload.toString(), 'lost', 'the will of a client of the crashed worker');
      await tb.logs.waitFor((l) => l.msg.startsWith('routing worker crashed') && l.worker === last);
      const pub = await clientOn(t, tb, 0, { clientId: 'crash-pub' });
      for (let i = 0; i < 5; i++) await publish(pub, `crash/${i}`, String(i), 1, i + 1);
      const back = await clientOn(t, tb, last, { clientId: 'crash-victim', clean: false });
      const got: string[] = [];
      for (let i = 0; i < 5; i++) got.push((await receive(back)).payload.toString());
      t.same(got, ['0', '1', '2', '3', '4'], 'the persistent session survived the crash with its queue');
      bystander.send({ cmd: 'pingreq' });
      t.equal((await bystander.expect('pingresp')).cmd, 'pingresp', 'clients of other workers were untouched');
      const stats = await supervisor.stats();
      t.equal(stats.find((s) => s.worker === String(last))?.counters.workerRestarts, 1, 'counted');
    });
  });
}
