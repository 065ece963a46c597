/**
 * Aedes on a TCP port, for side-by-side runs (benchmarks/macro/compare.mjs).
 *
 *   node benchmarks/macro/aedes-server.mjs --port 1884 [--host 127.0.0.1] [--nodelay]
 *
 * Default options (in-memory persistence, mqemitter): what `Aedes.createBroker()` gives a user.
 * --nodelay sets TCP_NODELAY on accepted sockets (compare.mjs does so for every broker).
 * Logs nothing per client; exits cleanly on SIGTERM/SIGINT.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Aedes } from 'aedes';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '1883' },
    host: { type: 'string', default: '127.0.0.1' },
    nodelay: { type: 'boolean', default: false },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`aedes-server: bad --port ${values.port}`);
  process.exit(2);
}

const broker = await Aedes.createBroker();
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
