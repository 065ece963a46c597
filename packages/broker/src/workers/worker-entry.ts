/**
 * A routing worker: one thread that accepts connections on the node's shared listening
 * socket and owns them end to end (read, decode, route, encode, write). It reaches the other
 * workers through its MemberLink and the supervisor through the parent port.
 *
 * A crash (an exception nothing caught) is contained in the thread: the broker's clients are
 * disconnected (their wills fire), its persistent sessions are carried into a fresh broker,
 * and the thread goes on accepting. The thread itself never ends while the node runs: every
 * worker accepts on the same descriptor, and a thread that ended would close it for all.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type Forwarded, GROUP_TARGET } from '@tern/cluster';
import type { TlsMaterial } from '@tern/listener';
import { decodeSnapshot, encodeSnapshot, Message, optionsQos } from '@tern/session';
import { Broker } from '../broker.js';
import { messageFromRecord } from '../forwarded-record.js';
import { heapTrimFor } from '../heap-trim.js';
import { type ListenerFds, ListenerSet } from '../listeners.js';
import { createRootLogger } from '../logger.js';
import { snapshotStats } from '../metrics/snapshot.js';
import { NodeLimitState } from '../node-limits.js';
import { deliverFromStub, dropStub, releaseSession, stubDropped } from '../session-moves.js';
import { MemberLink } from './member-link.js';
import { type FromWorker, type ToWorker, transferOf } from './messages.js';
import type { WorkerData } from './supervisor.js';

const data = workerData as WorkerData;
const port = parentPort;
if (port === null) throw new Error('worker-entry.js runs only as a worker thread');

const config = data.config;
const post = (message: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);
const log = createRootLogger({
  level: config.logLevel,
  pretty: config.logPretty,
  base: { node: config.nodeName, worker: data.index },
  directStdout: true,
  stream: data.logToParent ? { write: (line: string) => post({ t: 'log', line }) } : undefined,
});
const link = new MemberLink(
  data.index,
  (message) => post(message),
  data.nodeNumber === null ? -1 : data.count,
  data.nodeNumber ?? 0,
);
// The supervisor checks the memory mark for the node; every worker reads the shared state.
const nodeLimits = new NodeLimitState(data.nodeLimits);
let broker = new Broker(config, log, {
  link,
  sys: false,
  nodeLimits,
  heapTrim: heapTrimFor(config.heapTrimConnections),
});
// Refused logins slow their address down on every worker, not only on the one that saw them.
broker.access.onFailure = (address) => post({ t: 'auth-failure', address });
let listeners: ListenerSet | null = null;
let restarts = 0;

link.receiver = {
  acceptForwarded(record: Forwarded): void {
    const message = messageFromRecord(record);
    if (record.target === '') broker.acceptForwarded(message);
    else if (record.target.startsWith(GROUP_TARGET)) broker.acceptForGroup(record.target.slice(1), message);
    else deliverFromStub(broker, record, message);
  },
  dropStub(clientId: string, to: number): void {
    dropStub(broker, clientId, to);
  },
  stubDropped(clientId: string): void {
    stubDropped(broker, clientId);
  },
};

async function listen(fds: ListenerFds | null, tls: TlsMaterial | null): Promise<void> {
  try {
    // Each worker reads the password and ACL files itself (the supervisor checked them first).
    await broker.access.load(broker.config);
    // Connections go to whichever broker is current (a crash replaces it; the listeners stay).
    listeners = await ListenerSet.open({ config, tls, fds, openCount: data.openCount, broker: () => broker });
    broker.startServing();
    post({ t: 'listening', listeners: listeners.bound });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    post({ t: 'listen-failed', code: e.code ?? 'TERN_LISTEN_FAILED', message: e.message ?? String(err) });
  }
}

/** Contains a crash: clients go (wills fire), sessions and retained messages carry over. */
function restart(error: unknown): void {
  restarts++;
  const old = broker;
  for (const client of [...old.connections]) client.close('internal-error');
  const contents = old.snapshotContents();
  const next = new Broker(config, log, {
    link,
    sys: false,
    nodeLimits,
    heapTrim: heapTrimFor(config.heapTrimConnections),
  });
  // The loaded files and the record of failed logins carry over.
  next.access = old.access;
  old.replacedBy = next;
  broker = next;
  next.restore(contents);
  link.announceAll(next.localFilters());
  if (listeners !== null) next.startServing();
  old.stopTimers();
  post({ t: 'crashed', error: error instanceof Error ? error.message : String(error), restarts });
}

process.on('uncaughtException', (err) => {
  log.error({ err }, 'routing worker crashed: restarting its broker');
  try {
    restart(err);
  } catch (second) {
    // Nothing sane is left to do in this thread; the supervisor sees it exit.
    log.fatal({ err: second }, 'routing worker could not recover');
    process.exit(1);
  }
});

port.on('message', (message: ToWorker) => {
  switch (message.t) {
    case 'peers':
      for (const [index, peerPort] of Object.entries(message.ports)) link.addPeer(Number(index), peerPort);
      return;
    case 'listen':
      void listen(message.fds, message.tls);
      return;
    case 'restore':
      broker.restore(decodeSnapshot(message.snapshot, broker.sessionLimits));
      post({ t: 'restored' });
      return;
    case 'claimed':
      link.claimed(message.req, { session: message.session, from: message.from, refused: message.refused });
      return;
    case 'release': {
      const session = releaseSession(broker, message.clientId, message.clean, message.to);
      post({ t: 'released', req: message.req, session }, transferOf(session));
      return;
    }
    case 'stats': {
      const snapshot = snapshotStats(broker, String(data.index));
      snapshot.gauges.routeTableFilters = link.routes.filterCount;
      snapshot.counters.messagesForwarded = { out: link.forwardedOut, in: link.forwardedIn };
      snapshot.counters.workerRestarts = restarts;
      post({ t: 'stats', req: message.req, snapshot });
      return;
    }
    case 'snapshot': {
      const contents = broker.snapshotContents();
      const bytes = encodeSnapshot({
        sessions: contents.sessions,
        retained: message.retained ? contents.retained : [],
      });
      post({ t: 'snapshot', req: message.req, bytes });
      return;
    }
    case 'config': {
      broker.applyConfig(message.config);
      if (listeners !== null) {
        listeners.maxConnections = broker.config.maxConnections;
        listeners.setMaxPacketSize(broker.config.maxPacketSize);
        // Synchronous: the supervisor's reload line follows every worker's answer, so a client
        // connecting after that line gets the new certificate whichever worker accepts it.
        if (message.tls !== null) listeners.setSecureContext(message.tls);
      }
      const req = message.req;
      void (broker.accessReload ?? broker.reloadAccess()).then((access) => post({ t: 'reloaded', req, access }));
      return;
    }
    case 'auth-failure':
      broker.access.throttle.failed(message.address, Date.now());
      return;
    case 'log-level':
      broker.setLogLevel(message.level);
      return;
    case 'sys':
      for (const [topic, value] of message.values) broker.publish(new Message(topic, Buffer.from(value), 0, true, ''));
      return;
    case 'stop':
      void stop(message.graceMs);
      return;
    case 'session': {
      const session = broker.sessions.get(message.clientId);
      const info =
        session === undefined || session.movedTo >= 0
          ? null
          : {
              clientId: session.clientId,
              worker: data.index,
              online: session.owner !== null,
              persistent: !session.isTransient,
              subscriptions: [...session.subscriptions].map(([filter, o]): [string, number] => [filter, optionsQos(o)]),
              queued: session.queue.length,
              inflight: session.inflight.size,
            };
      post({ t: 'session', req: message.req, info });
      return;
    }
    case 'crash':
      setImmediate(() => {
        throw new Error('crash requested by the supervisor (debug hook)');
      });
      return;
  }
});

async function stop(graceMs: number): Promise<void> {
  const closing = listeners?.close();
  listeners = null;
  await broker.stop(graceMs);
  link.flushNow();
  await closing;
  post({ t: 'stopped', snapshot: encodeSnapshot(broker.snapshotContents()) });
}
