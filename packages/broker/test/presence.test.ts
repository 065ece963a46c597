import { type ChildProcess, spawn } from 'node:child_process';
import { startBroker } from '@tern/testkit';
import mqtt from 'mqtt';
import t from 'tap';
import { serverClosed } from './support/flows.js';
import { Inbox, run } from './support/mqttjs.js';

/**
 * The presence pattern: a device announces "online" as a retained message and leaves a
 * retained will "offline" on the same topic, so anyone subscribing later learns whether it
 * is there [MQTT-3.1.2-8] [MQTT-3.1.2-17] [MQTT-3.3.1-5].
 */
t.test('presence with a retained will', async (t) => {
  const tb = await startBroker();
  const { port, logs } = tb;
  t.teardown(tb.stop);
  const options = { host: '127.0.0.1', port, protocolVersion: 4 as const, reconnectPeriod: 0 };

  const observer = await mqtt.connectAsync({ ...options, clientId: 'observer' });
  t.teardown(() => observer.end(true));
  const seen = new Inbox(observer);
  await observer.subscribeAsync(['+/status', 'presence/marker'], { qos: 1 });
  let markers = 0;
  /** Messages the observer got up to a marker published now. */
  const upToMarker = async () => {
    await observer.publishAsync('presence/marker', String(++markers), { qos: 1 });
    return seen.until('presence/marker');
  };

  /** What a newcomer learns: the retained status of `device`. */
  const status = async (device: string): Promise<{ payload: string; retain: boolean }> => {
    const newcomer = await mqtt.connectAsync({ ...options, clientId: `newcomer-${device}` });
    const inbox = new Inbox(newcomer);
    await newcomer.subscribeAsync(`${device}/status`, { qos: 1 });
    const m = await inbox.next();
    await newcomer.endAsync();
    return { payload: m.payload, retain: m.retain };
  };

  await t.test('MQTT.js: offline after the socket dies, online after a clean end', async (t) => {
    const will = { topic: 'dev1/status', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
    const dev1 = await mqtt.connectAsync({ ...options, clientId: 'dev1', will });
    t.teardown(() => dev1.end(true));
    await dev1.publishAsync('dev1/status', 'online', { qos: 1, retain: true });
    t.same(await seen.next(), { topic: 'dev1/status', payload: 'online', retain: false, qos: 1 }, 'observer: online');
    t.same(await status('dev1'), { payload: 'online', retain: true }, 'newcomer: online');

    dev1.stream.destroy();
    t.same(await seen.next(), { topic: 'dev1/status', payload: 'offline', retain: false, qos: 1 }, 'observer: offline');
    t.same(await status('dev1'), { payload: 'offline', retain: true }, 'newcomer: offline');

    const dev2 = await mqtt.connectAsync({ ...options, clientId: 'dev2', will: { ...will, topic: 'dev2/status' } });
    await dev2.publishAsync('dev2/status', 'online', { qos: 1, retain: true });
    await dev2.endAsync();
    await serverClosed(tb, 'dev2');
    t.same(
      (await upToMarker()).map((m) => `${m.topic}:${m.payload}`),
      ['dev2/status:online', `presence/marker:${markers}`],
      'observer: no will after DISCONNECT [MQTT-3.1.2-10]',
    );
    t.same(await status('dev2'), { payload: 'online', retain: true }, 'newcomer: still online');
  });

  await t.test('mosquitto_sub as the device, mosquitto_pub and mosquitto_sub -C 1 as the others', async (t) => {
    const base = ['-h', '127.0.0.1', '-p', String(port), '-V', 'mqttv311'];
    const will = ['--will-topic', 'dev3/status', '--will-payload', 'offline', '--will-retain', '--will-qos', '1'];
    const device: ChildProcess = spawn('mosquitto_sub', [...base, '-i', 'dev3', '-q', '1', '-t', 'dev3/cmd', ...will], {
      stdio: 'ignore',
    });
    t.teardown(() => device.kill('SIGKILL'));
    await logs.waitFor((l) => l.clientId === 'dev3' && l.msg === 'client connected');

    const online = await run('mosquitto_pub', [
      ...base,
      '-i',
      'dev3-pub',
      '-t',
      'dev3/status',
      '-m',
      'online',
      '-r',
      '-q',
      '1',
    ]);
    t.equal(online.code, 0, 'mosquitto_pub published online');
    const read = () => run('mosquitto_sub', [...base, '-t', 'dev3/status', '-q', '1', '-C', '1', '-W', '10']);
    t.same(await read(), { code: 0, stdout: 'online\n', stderr: '' }, 'newcomer: online');
    t.same(await seen.next(), { topic: 'dev3/status', payload: 'online', retain: false, qos: 1 });

    // The kernel closes the socket of a killed process: no DISCONNECT, so the will fires.
    device.kill('SIGKILL');
    t.same(await seen.next(), { topic: 'dev3/status', payload: 'offline', retain: false, qos: 1 }, 'observer: offline');
    t.same(await read(), { code: 0, stdout: 'offline\n', stderr: '' }, 'newcomer: offline');

    // mosquitto_pub sends DISCONNECT before it exits: the will is discarded.
    const clean = await run('mosquitto_pub', [
      ...base,
      '-i',
      'dev4',
      '-t',
      'dev4/status',
      '-m',
      'online',
      '-r',
      '-q',
      '1',
      ...will.map((a) => (a === 'dev3/status' ? 'dev4/status' : a)),
    ]);
    t.equal(clean.code, 0);
    await serverClosed(tb, 'dev4');
    t.same(
      (await upToMarker()).map((m) => `${m.topic}:${m.payload}`),
      ['dev4/status:online', `presence/marker:${markers}`],
      'observer: no will after DISCONNECT',
    );
    const dev4 = await run('mosquitto_sub', [...base, '-t', 'dev4/status', '-q', '1', '-C', '1', '-W', '10']);
    t.equal(dev4.stdout, 'online\n', 'newcomer: still online');
  });
});
