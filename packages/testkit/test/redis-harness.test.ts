import { connect } from 'node:net';
import t from 'tap';
import { startRedis } from '../src/index.js';

/** Sends one inline command; resolves with a simple reply's line or a bulk reply's value. */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`${line}\r\n`));
    let reply = '';
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      const lines = reply.split('\r\n');
      // A bulk reply ($<n>) is two lines; anything else is one.
      const needed = reply.startsWith('$') && !reply.startsWith('$-1') ? 3 : 2;
      if (lines.length < needed) return;
      socket.destroy();
      resolve((needed === 3 ? lines[1] : lines[0]) ?? '');
    });
    socket.on('error', reject);
  });
}

t.test('a real redis-server on a free port; its data survives a restart (AOF), even after SIGKILL', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.destroy());
  t.equal(await command(redis.port, 'PING'), '+PONG');
  t.equal(await command(redis.port, 'SET tern kept'), '+OK');
  await redis.stop('SIGKILL');
  await redis.restart();
  t.equal(
    await command(redis.port, 'GET tern'),
    'kept',
    'written to the AOF before the reply, so a process kill loses nothing',
  );
});
