/**
 * The cross-node scenarios: publishers connect to --pub-port and subscribers to --sub-port.
 * Here both ports lead to one toy broker, the second through a relay that counts who connects
 * through it, so the test sees which client went where.
 */
import net from 'node:net';
import t from 'tap';
import { load, loadRaw, startToy } from './support/run.mjs';

/** A TCP relay on a free loopback port to `port`; `connections` counts accepted sockets. */
async function relay(t, port) {
  const sockets = new Set();
  const state = { connections: 0 };
  const server = net.createServer((client) => {
    state.connections++;
    const upstream = net.connect({ host: '127.0.0.1', port });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  state.port = server.address().port;
  return state;
}

t.test('fanin-cross: the publishers on --pub-port, the subscriber on --sub-port', async (t) => {
  const { port } = await startToy(t);
  const nodeB = await relay(t, port);
  const flags = ['--scenario', 'fanin-cross', '--messages', '800', '--pub-port', String(port)];
  const { code, result } = await load([...flags, '--sub-port', String(nodeB.port)]);
  t.equal(code, 0, `exit 0 (${result.error ?? 'no error'})`);
  t.match(result, { pubPort: port, subPort: nodeB.port, sent: 800, received: 800, lost: 0 });
  t.equal(result.publishers, 8, "fanin's 8 publishers");
  t.equal(nodeB.connections, 1, 'only the subscriber went to node B');
});

t.test('a -cross scenario refuses one port for both sides', async (t) => {
  const { code, stderr } = await loadRaw(['--scenario', 'persistent-cross', '--port', '1883']);
  t.equal(code, 2);
  t.match(stderr, /needs --pub-port and --sub-port on two different nodes/);
});
