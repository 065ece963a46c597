/**
 * Aedes on a TCP port, for side-by-side runs (benchmarks/macro/compare.mjs, compare-cluster.mjs).
 *
 *   node benchmarks/macro/aedes-server.mjs --port 1884 [--host 127.0.0.1] [--nodelay]
 *        [--redis redis://127.0.0.1:6379 --id aedes-a]
 *
 * Default options (in-memory persistence, mqemitter): what `Aedes.createBroker()` gives a user.
 * --redis makes the process one node of an Aedes cluster, the way Aedes documents it:
 * mqemitter-redis carries publishes between nodes and aedes-persistence-redis holds sessions,
 * offline queues and retained messages, so every node sharing the Redis sees the same state.
 * --nodelay sets TCP_NODELAY on accepted sockets (compare.mjs does so for every broker).
 * Logs nothing per client; exits cleanly on SIGTERM/SIGINT.
 */
import { createRequire } from 'node:module';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Aedes } from 'aedes';

const require = createRequire(import.meta.url);
/**
 * Offline messages aedes-persistence-redis hands a reconnecting client (its default is 1000):
 * raised so the persistent scenarios' 10,000 queued messages all come back, as with the others.
 */
const MAX_SESSION_DELIVERY = 1_000_000;

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '1883' },
    host: { type: 'string', default: '127.0.0.1' },
    nodelay: { type: 'boolean', default: false },
    redis: { type: 'string' },
    id: { type: 'string' },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`aedes-server: bad --port ${values.port}`);
  process.exit(2);
}

/** Options for a node of a Redis-backed Aedes cluster (the packages load only when asked for). */
function clusterOptions(url) {
  const MQEmitterRedis = require('mqemitter-redis');
  const redisPersistence = require('aedes-persistence-redis');
  const { hostname, port: redisPort } = new URL(url);
  return {
    id: values.id,
    mq: MQEmitterRedis({ connectionString: url }),
    persistence: redisPersistence({
      host: hostname,
      port: Number(redisPort || 6379),
      maxSessionDelivery: MAX_SESSION_DELIVERY,
    }),
  };
}

const broker = await Aedes.createBroker(values.redis ? clusterOptions(values.redis) : {});
const server = net.createServer({ noDelay: values.nodelay }, broker.handle);

server.on('error', (err) => {
  console.error(`aedes-server: ${err.message}`);
  process.exit(1);
});

server.listen(port, values.host, () => {
  console.error(`aedes-server: listening on ${values.host}:${port}`);
});

let closing = false;
function shutdown() {
  if (closing) return;
  closing = true;
  server.close();
  broker.close(() => process.exit(0));
  // Clients still connected keep close() waiting; a benchmark broker need not wait for them.
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
