/**
 * A routing worker's link to the other workers of its node (one MessagePort per peer) and to
 * the supervisor (the parent port). Publishes leave as one batch per peer per event-loop turn
 * (raw bytes, transferred); route changes, barriers and session moves are small control
 * messages on the same port, always sent after the peer's pending batch, so every peer sees
 * one member's publishes and control messages in the order they happened.
 */
import type { MessagePort } from 'node:worker_threads';
import { type Forwarded, GROUP_TARGET, PublishBatchWriter, readPublishBatch } from '@tern/cluster';
import type { QoS, Will } from '@tern/protocol';
import { RouteTable, type ShareGroup } from '@tern/router';
import type { Message } from '@tern/session';
import type { Claim, ClusterLink, SessionJournal } from '../cluster-link.js';
import { clearRecord, fillRecord, scratchRecord } from '../forwarded-record.js';
import type { FromWorker, JournalKind, JournalOps, ToPeer } from './messages.js';

/** What the link hands to the broker it serves. */
export interface LinkReceiver {
  /** A publish forwarded by a peer: match it here only (never forward it again). */
  acceptForwarded(record: Forwarded): void;
  /** A peer asks this member to drop the stub of a session that moved to it. */
  dropStub(clientId: string, to: number): void;
  /** The stub of a session that moved here is gone: its move is complete. */
  stubDropped(clientId: string): void;
}

interface Peer {
  readonly index: number;
  readonly port: MessagePort;
  readonly batch: PublishBatchWriter;
}

/** Room for this many workers per node in a message id (see idMember). */
export const MEMBERS_PER_NODE = 256;
/** The low part of a message id: a member's counter runs below it. */
export const MESSAGE_SEQ_LIMIT = 2 ** 32;

export class MemberLink implements ClusterLink, SessionJournal {
  readonly member: number;
  readonly idMember: number;
  /**
   * The node's gateway (cluster mode): the peer that stands for the other nodes and writes
   * the session store. Null for a node on its own.
   */
  private gateway: Peer | null = null;
  private readonly gatewayIndex: number;
  private messageSeq = 0;
  /** The gateway barrier this turn's acknowledgements wait on (sent by flush), or null. */
  private turnConfirm: Promise<void> | null = null;
  private turnConfirmN = 0;
  /** Whether the last forward() handed the message to the gateway. */
  private gatewayGotLast = false;
  /** Session changes not yet sent to the gateway (sent with the next flush, after the batch). */
  private journalOps: JournalOps = [];
  /** Other members' filters: who gets a forwarded copy of what. */
  readonly routes = new RouteTable();
  receiver: LinkReceiver | null = null;
  /** Publish records sent to peers and received from them (metrics). */
  forwardedOut = 0;
  forwardedIn = 0;
  private readonly peers = new Map<number, Peer>();
  private readonly toSupervisor: (message: FromWorker) => void;
  private flushScheduled = false;
  private readonly dirty: Peer[] = [];
  private readonly record = scratchRecord();
  /** Barriers: the next number to use, and per number the peers yet to answer. */
  private nextBarrier = 1;
  private readonly barriers = new Map<number, { waiting: number; resolve: () => void }>();
  /** Claims sent to the supervisor, by request number. */
  private nextClaim = 1;
  private readonly claims = new Map<number, (claim: Claim) => void>();
  private readonly flush = (): void => {
    this.flushScheduled = false;
    for (const peer of this.dirty) this.sendBatch(peer);
    this.dirty.length = 0;
    if (this.journalOps.length > 0 && this.gateway !== null) {
      const ops = this.journalOps;
      this.journalOps = [];
      this.gateway.port.postMessage({ t: 'journal', ops } satisfies ToPeer);
    }
    // This turn's confirmation, after everything the turn sent the gateway.
    if (this.turnConfirm !== null && this.gateway !== null) {
      this.turnConfirm = null;
      this.gateway.port.postMessage({ t: 'ping', n: this.turnConfirmN } satisfies ToPeer);
    }
  };

  /**
   * @param gatewayIndex the peer index of the node's gateway, or -1 for a node on its own.
   * @param nodeNumber the node's number in its cluster (0 on its own): ids stay unique in it.
   */
  constructor(member: number, toSupervisor: (message: FromWorker) => void, gatewayIndex = -1, nodeNumber = 0) {
    this.member = member;
    // Ids are idMember * 2^32 + a counter and must stay below 2^53: 2^21 members in all.
    this.idMember = nodeNumber * MEMBERS_PER_NODE + member;
    this.toSupervisor = toSupervisor;
    this.gatewayIndex = gatewayIndex;
  }

  get gatewayMember(): number {
    return this.gatewayIndex;
  }

  get journal(): SessionJournal | null {
    return this.gatewayIndex >= 0 ? this : null;
  }

  get hasPeers(): boolean {
    return this.peers.size > 0;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /** Wires the port to peer `index`; everything it sends arrives in `receive`. */
  addPeer(index: number, port: MessagePort): void {
    const peer: Peer = { index, port, batch: new PublishBatchWriter(16 * 1024) };
    this.peers.set(index, peer);
    if (index === this.gatewayIndex) this.gateway = peer;
    port.on('message', (data: Uint8Array | ToPeer) => this.receive(peer, data));
  }

  forward(message: Message): void {
    this.gatewayGotLast = false;
    if (this.peers.size === 0) return;
    if (message.retain) {
      // Every member keeps every retained message: a new subscriber anywhere gets it at once.
      for (const peer of this.peers.values()) this.append(peer, message, '', 0);
      this.gatewayGotLast = this.gateway !== null;
      return;
    }
    const members = this.routes.match(message.topic);
    for (let i = 0; i < members.length; i++) {
      const index = members[i] as number;
      const peer = this.peers.get(index);
      if (peer === undefined) continue;
      this.append(peer, message, '', 0);
      if (index === this.gatewayIndex) this.gatewayGotLast = true;
    }
  }

  nextMessageId(): number {
    this.messageSeq = (this.messageSeq + 1) % MESSAGE_SEQ_LIMIT;
    return this.idMember * MESSAGE_SEQ_LIMIT + this.messageSeq;
  }

  confirmForwarded(): Promise<void> | null {
    return this.gatewayGotLast ? this.confirmJournal() : null;
  }

  confirmJournal(): Promise<void> | null {
    if (this.gateway === null) return null;
    // A barrier with the gateway alone (it answers once Redis has what this member sent),
    // one per event-loop turn: every acknowledgement of the turn waits on the same one,
    // sent at the end of the turn, so a burst of QoS 1 publishes costs one round, not one each.
    if (this.turnConfirm === null) {
      const n = this.nextBarrier++;
      this.turnConfirmN = n;
      this.turnConfirm = new Promise((resolve) => this.barriers.set(n, { waiting: 1, resolve }));
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(this.flush);
      }
    }
    return this.turnConfirm;
  }

  // ---- SessionJournal: persistent-session changes for the gateway's store ----

  subscribed(clientId: string, filter: string, qos: QoS): void {
    this.journalOp('sub', clientId, filter, qos);
  }

  unsubscribed(clientId: string, filter: string): void {
    this.journalOp('unsub', clientId, filter, null);
  }

  sent(clientId: string, id: number, packetId: number): void {
    this.journalOp('sent', clientId, id, packetId);
  }

  released(clientId: string, id: number): void {
    this.journalOp('rel', clientId, id, null);
  }

  completed(clientId: string, id: number): void {
    this.journalOp('done', clientId, id, null);
  }

  incomingQos2(clientId: string, packetId: number, pending: boolean): void {
    this.journalOp('in2', clientId, packetId, pending);
  }

  will(clientId: string, will: Will | null): void {
    this.journalOp('will', clientId, will, null);
  }

  offline(clientId: string, expiresAt: number): void {
    // -1 for never: a journal crosses threads by structured clone, which keeps Infinity, but
    // the store's own encodings may not.
    this.journalOp('off', clientId, Number.isFinite(expiresAt) ? expiresAt : -1, null);
  }

  ended(clientId: string): void {
    this.journalOp('end', clientId, null, null);
  }

  private journalOp(
    kind: JournalKind,
    clientId: string,
    a: string | number | boolean | Will | null,
    b: string | number | boolean | null,
  ): void {
    this.journalOps.push(kind, clientId, a, b);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
    }
  }

  get hasSharedRoutes(): boolean {
    return this.routes.hasShared;
  }

  matchShared(topic: string, visit: (group: ShareGroup<number>) => void): void {
    this.routes.matchShared(topic, visit);
  }

  sharedGroup(key: string): ShareGroup<number> | undefined {
    return this.routes.sharedGroup(key);
  }

  forwardToGroup(member: number, group: string, message: Message): void {
    const peer = this.peers.get(member);
    if (peer === undefined) return;
    this.append(peer, message, GROUP_TARGET + group, 0);
    if (member === this.gatewayIndex) this.gatewayGotLast = true;
  }

  forwardToSession(member: number, clientId: string, message: Message, qos: QoS): void {
    const peer = this.peers.get(member);
    if (peer !== undefined) this.append(peer, message, clientId, qos);
  }

  filterAdded(filter: string): void {
    this.control({ t: 'route+', filters: [filter] });
  }

  filterRemoved(filter: string): void {
    this.control({ t: 'route-', filters: [filter] });
  }

  /**
   * After a restart of this member's broker: peers replace its routes with `filters`, in one
   * message, so no publish handled between a reset and a re-announce can miss this member.
   */
  announceAll(filters: Iterable<string>): void {
    this.control({ t: 'routes', filters: [...filters] });
  }

  barrier(): Promise<void> {
    if (this.peers.size === 0) return Promise.resolve();
    const n = this.nextBarrier++;
    return new Promise((resolve) => {
      this.barriers.set(n, { waiting: this.peers.size, resolve });
      this.control({ t: 'ping', n, wide: true });
    });
  }

  claim(clientId: string, clean: boolean, expiryInterval: number): Promise<Claim> {
    const req = this.nextClaim++;
    return new Promise((resolve) => {
      this.claims.set(req, resolve);
      // Infinity survives postMessage (the structured clone keeps it).
      this.toSupervisor({ t: 'claim', req, clientId, clean, expiry: expiryInterval });
    });
  }

  /** The supervisor's answer to a claim. */
  claimed(req: number, claim: Claim): void {
    const resolve = this.claims.get(req);
    this.claims.delete(req);
    resolve?.(claim);
  }

  sessionGone(clientId: string): void {
    this.toSupervisor({ t: 'gone', clientId });
  }

  dropStub(from: number, clientId: string): void {
    const peer = this.peers.get(from);
    if (peer === undefined) return;
    this.sendTo(peer, { t: 'drop-stub', clientId });
  }

  /** Tells `to` that this member's stub of `clientId` is gone: nothing more will come that way. */
  stubDropped(to: number, clientId: string): void {
    const peer = this.peers.get(to);
    if (peer !== undefined) this.sendTo(peer, { t: 'stub-dropped', clientId });
  }

  settled(clientId: string): void {
    this.toSupervisor({ t: 'settled', clientId });
  }

  /** Sends pending batches now (before a control message to the supervisor that depends on them). */
  flushNow(): void {
    this.flush();
  }

  private append(peer: Peer, message: Message, target: string, targetQos: QoS): void {
    const r = fillRecord(this.record, message, target, targetQos);
    peer.batch.append(r);
    clearRecord(r);
    this.forwardedOut++;
    if (peer.batch.count === 1) this.dirty.push(peer);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
    }
  }

  private sendBatch(peer: Peer): void {
    if (peer.batch.count === 0) return;
    const bytes = peer.batch.take();
    peer.port.postMessage(bytes, [bytes.buffer]);
  }

  /** A control message to every peer, each after that peer's pending batch. */
  private control(message: ToPeer): void {
    for (const peer of this.peers.values()) this.sendTo(peer, message);
  }

  private sendTo(peer: Peer, message: ToPeer): void {
    this.sendBatch(peer);
    if (peer === this.gateway && this.journalOps.length > 0) {
      const ops = this.journalOps;
      this.journalOps = [];
      peer.port.postMessage({ t: 'journal', ops } satisfies ToPeer);
    }
    peer.port.postMessage(message);
  }

  private receive(peer: Peer, data: Uint8Array | ToPeer): void {
    if (data instanceof Uint8Array) {
      const receiver = this.receiver;
      if (receiver !== null) {
        readPublishBatch(data, (record) => {
          this.forwardedIn++;
          receiver.acceptForwarded(record);
        });
      }
      return;
    }
    switch (data.t) {
      case 'route+':
        for (const filter of data.filters) this.routes.add(filter, peer.index);
        break;
      case 'route-':
        for (const filter of data.filters) this.routes.remove(filter, peer.index);
        break;
      case 'routes':
        this.routes.removeMember(peer.index);
        for (const filter of data.filters) this.routes.add(filter, peer.index);
        break;
      case 'ping':
        // Everything this peer sent before the ping has been handled: answer after our own
        // pending batch to it, so the answer also orders what we sent.
        this.sendTo(peer, { t: 'pong', n: data.n });
        break;
      case 'pong': {
        const barrier = this.barriers.get(data.n);
        if (barrier !== undefined && --barrier.waiting === 0) {
          this.barriers.delete(data.n);
          barrier.resolve();
        }
        break;
      }
      case 'drop-stub':
        this.receiver?.dropStub(data.clientId, peer.index);
        break;
      case 'stub-dropped':
        this.receiver?.stubDropped(data.clientId);
        break;
    }
  }
}
