import { spawn } from 'node:child_process';
import type { QoS } from '@tern/protocol';
import { RawClient, startBroker } from '@tern/testkit';
import t from 'tap';
import { connectMqttjs, settledMqttjs } from './support/mqttjs.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a mosquitto client to completion; `end` kills it if the test ends first. */
function run(command: string, args: string[]): { done: Promise<Run>; end: () => void } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const done = new Promise<Run>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return {
    done,
    end: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
    },
  };
}

t.test('retained messages', async (t) => {
  const tb = await startBroker();
  const { port } = tb;
  t.teardown(tb.stop);
  const publisher = async (clientId: string) => {
    return connectMqttjs(t, port, clientId);
  };
  const subscriber = async (clientId: string, subscriptions: { topic: string; qos: QoS }[]) => {
    const { client } = await RawClient.connected(port, { clientId });
    t.teardown(() => client.destroy());
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions });
    await client.expect('suback');
    return client;
  };
  /**
   * The next packet after a PINGREQ: 'pingresp' when the broker had written nothing else
   * before reading it (retained messages go out right after the SUBACK).
   */
  const nextAfterPing = async (client: RawClient) => {
    client.send({ cmd: 'pingreq' });
    return (await client.next()).cmd;
  };
  /** How many retained messages each routing worker holds (every one keeps them all). */
  const retainedPerWorker = async (): Promise<number[]> =>
    tb.supervisor === null
      ? [(await tb.stats()).gauges.retainedMessages]
      : (await tb.supervisor.stats()).map((s) => s.gauges.retainedMessages);

  await t.test('a new subscriber gets the retained message with RETAIN=1 [MQTT-3.3.1-6] [MQTT-3.3.1-8]', async (t) => {
    const pub = await publisher('ret-new-pub');
    await pub.publishAsync('ret/new', 'kept', { qos: 1, retain: true });
    const sub = await subscriber('ret-new-sub', [{ topic: 'ret/new', qos: 1 }]);
    const p = await sub.expect('publish');
    t.equal(p.topic, 'ret/new');
    t.equal(p.payload.toString(), 'kept');
    t.equal(p.retain, true);
    sub.send({ cmd: 'puback', messageId: p.messageId as number });
  });

  await t.test('an existing subscriber gets a retained publish with RETAIN=0 [MQTT-3.3.1-9]', async (t) => {
    const sub = await subscriber('ret-live-sub', [{ topic: 'ret/live', qos: 0 }]);
    const pub = await publisher('ret-live-pub');
    await pub.publishAsync('ret/live', 'live', { qos: 1, retain: true });
    const p = await sub.expect('publish');
    t.equal(p.payload.toString(), 'live');
    t.equal(p.retain, false);
  });

  await t.test('the last retained message per topic wins [MQTT-3.3.1-5]', async (t) => {
    const pub = await publisher('ret-last-pub');
    for (const v of ['v1', 'v2', 'v3']) await pub.publishAsync('ret/last', v, { qos: 1, retain: true });
    // A non-retained publish neither stores nor replaces it [MQTT-3.3.1-12].
    await pub.publishAsync('ret/last', 'not-retained', { qos: 1, retain: false });
    const sub = await subscriber('ret-last-sub', [{ topic: 'ret/last', qos: 0 }]);
    const p = await sub.expect('publish');
    t.equal(p.payload.toString(), 'v3');
    t.equal(p.retain, true);
    t.equal(await nextAfterPing(sub), 'pingresp', 'one retained message per topic');
  });

  await t.test(
    'the retained QoS is kept, delivered at min(retained QoS, granted QoS) [MQTT-3.3.1-5] [MQTT-3.8.4-6]',
    async (t) => {
      const pub = await publisher('ret-qos-pub');
      await pub.publishAsync('ret/qos/1', 'one', { qos: 1, retain: true });
      await pub.publishAsync('ret/qos/2', 'two', { qos: 2, retain: true });
      await pub.publishAsync('ret/qos/0', 'zero', { qos: 0, retain: true });
      // QoS 1 from the same publisher, after: once it is acknowledged, the QoS 0 one is stored
      // (with routing workers, by every worker).
      await settledMqttjs(pub);
      for (const [granted, expected] of [
        [2, { 'ret/qos/0': 0, 'ret/qos/1': 1, 'ret/qos/2': 2 }],
        [1, { 'ret/qos/0': 0, 'ret/qos/1': 1, 'ret/qos/2': 1 }],
        [0, { 'ret/qos/0': 0, 'ret/qos/1': 0, 'ret/qos/2': 0 }],
      ] as const) {
        const sub = await subscriber(`ret-qos-sub-${granted}`, [{ topic: 'ret/qos/+', qos: granted }]);
        const got: Record<string, number> = {};
        for (let i = 0; i < 3; i++) {
          const p = await sub.expect('publish');
          got[p.topic] = p.qos;
          t.equal(p.retain, true);
        }
        t.same(got, expected, `granted ${granted}`);
      }
    },
  );

  await t.test(
    'an empty retained payload deletes the retained message and is not stored [MQTT-3.3.1-10] [MQTT-3.3.1-11]',
    async (t) => {
      const before = await retainedPerWorker();
      const pub = await publisher('ret-del-pub');
      await pub.publishAsync('ret/del', 'doomed', { qos: 1, retain: true });
      await pub.publishAsync('ret/keep', 'kept', { qos: 1, retain: true });
      const existing = await subscriber('ret-del-existing', [{ topic: 'ret/del', qos: 0 }]);
      t.equal((await existing.expect('publish')).payload.toString(), 'doomed');

      await pub.publishAsync('ret/del', '', { qos: 1, retain: true });
      const deletion = await existing.expect('publish');
      t.equal(deletion.payload.length, 0, 'the empty message is delivered normally to an existing subscriber');
      t.equal(deletion.retain, false);

      // Retained messages follow the filter order of the SUBSCRIBE: a stale 'ret/del' would come first.
      const fresh = await subscriber('ret-del-fresh', [
        { topic: 'ret/del', qos: 0 },
        { topic: 'ret/keep', qos: 0 },
      ]);
      const p = await fresh.expect('publish');
      t.equal(p.topic, 'ret/keep', 'only the other topic has a retained message');
      t.equal(p.payload.toString(), 'kept');
      t.equal(await nextAfterPing(fresh), 'pingresp', 'nothing for the deleted topic');
      if (tb.broker !== null) t.equal(tb.broker.retained.get('ret/del'), undefined);
      t.same(
        await retainedPerWorker(),
        before.map((n) => n + 1),
        "each worker holds one more retained message ('ret/keep'), none for 'ret/del'",
      );
    },
  );

  await t.test('a wildcard subscription gets every matching retained message', async (t) => {
    const pub = await publisher('ret-wild-pub');
    for (const topic of ['ret/wild', 'ret/wild/a', 'ret/wild/b/c', 'ret/wilder', 'ret/other/a']) {
      await pub.publishAsync(topic, `payload of ${topic}`, { qos: 1, retain: true });
    }
    const sub = await subscriber('ret-wild-sub', [{ topic: 'ret/wild/#', qos: 0 }]);
    const topics: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await sub.expect('publish');
      t.equal(p.payload.toString(), `payload of ${p.topic}`);
      t.equal(p.retain, true);
      topics.push(p.topic);
    }
    t.same(topics.sort(), ['ret/wild', 'ret/wild/a', 'ret/wild/b/c']);
    t.equal(await nextAfterPing(sub), 'pingresp', 'no other retained message');
  });

  await t.test('mosquitto_pub -r stores a retained message that mosquitto_sub receives', async (t) => {
    const common = ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311'];
    const pub = run('mosquitto_pub', [...common, '-t', 'ret/mosquitto', '-m', 'from mosquitto_pub', '-r', '-q', '1']);
    t.teardown(pub.end);
    t.equal((await pub.done).code, 0, 'mosquitto_pub exited 0');

    // -C 1: exit after the one message; -W only bounds a broken run.
    const sub = run('mosquitto_sub', [
      ...common,
      '-t',
      'ret/mosquitto',
      '-q',
      '1',
      '-C',
      '1',
      '-W',
      '20',
      '-F',
      '%r %q %t %p',
    ]);
    t.teardown(sub.end);
    const got = await sub.done;
    t.equal(got.code, 0, `mosquitto_sub exited 0 ${got.stderr}`);
    t.equal(got.stdout, '1 1 ret/mosquitto from mosquitto_pub\n', 'retain flag 1, QoS 1, topic, payload');

    const del = run('mosquitto_pub', [...common, '-t', 'ret/mosquitto', '-n', '-r', '-q', '1']);
    t.teardown(del.end);
    t.equal((await del.done).code, 0, 'mosquitto_pub -n -r exited 0');
    const keep = run('mosquitto_pub', [...common, '-t', 'ret/mosquitto-keep', '-m', 'kept', '-r', '-q', '1']);
    t.teardown(keep.end);
    t.equal((await keep.done).code, 0);

    const after = run('mosquitto_sub', [
      ...common,
      '-t',
      'ret/mosquitto',
      '-t',
      'ret/mosquitto-keep',
      '-C',
      '1',
      '-W',
      '20',
      '-F',
      '%r %t %p',
    ]);
    t.teardown(after.end);
    const gotAfter = await after.done;
    t.equal(gotAfter.code, 0);
    t.equal(gotAfter.stdout, '1 ret/mosquitto-keep kept\n', 'the deleted retained message is gone');
  });
});
