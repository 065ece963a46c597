import { connect, type Socket } from 'node:net';
import { encode, type Packet, PacketDecoder, type ProtocolVersion } from '@tern/protocol';

/**
 * An MQTT client made of a socket and Tern's codec, for tests that must send what client
 * libraries refuse to (bad bytes, missing acks, duplicate ids) and read every packet back.
 */
export class RawClient {
  readonly socket: Socket;
  private readonly decoder: PacketDecoder;
  private readonly inbox: Packet[] = [];
  private waiting: { resolve: (p: Packet) => void; reject: (e: Error) => void } | null = null;
  private closedWaiters: Array<() => void> = [];
  closed = false;

  /** The protocol level this client speaks (CONNECT and every packet after it). */
  readonly version: ProtocolVersion;

  private constructor(socket: Socket, version: ProtocolVersion) {
    this.socket = socket;
    this.version = version;
    this.decoder = new PacketDecoder((p) => this.receive(p), { protocolVersion: version });
    socket.on('data', (chunk: Buffer) => this.decoder.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      if (this.waiting !== null) {
        this.waiting.reject(new Error('connection closed while waiting for a packet'));
        this.waiting = null;
      }
      for (const w of this.closedWaiters) w();
      this.closedWaiters = [];
    });
  }

  /**
   * Opens a socket to 127.0.0.1:`port`. `localAddress` (another loopback address, such as
   * 127.0.0.2) makes the connection come from there: a different remote address to the broker.
   */
  static open(port: number, version: ProtocolVersion = 4, localAddress?: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1', localAddress });
      socket.once('connect', () => resolve(new RawClient(socket, version)));
      socket.once('error', reject);
    });
  }

  /** Opens a socket and completes CONNECT/CONNACK; returns the client and the CONNACK. */
  static async connected(
    port: number,
    connect: Partial<Extract<Packet, { cmd: 'connect' }>> = {},
    localAddress?: string,
  ): Promise<{ client: RawClient; connack: Extract<Packet, { cmd: 'connack' }> }> {
    const client = await RawClient.open(port, connect.protocolVersion ?? 4, localAddress);
    const connack = await client.connect(connect);
    return { client, connack };
  }

  /** Sends CONNECT (the client's protocol level, clean, no keepalive unless `connect` says otherwise). */
  sendConnect(connect: Partial<Extract<Packet, { cmd: 'connect' }>> = {}): void {
    this.send({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: this.version,
      clean: true,
      keepalive: 0,
      clientId: '',
      ...connect,
    });
  }

  /** Sends CONNECT on this open socket and resolves with the CONNACK. */
  async connect(
    connect: Partial<Extract<Packet, { cmd: 'connect' }>> = {},
  ): Promise<Extract<Packet, { cmd: 'connack' }>> {
    this.sendConnect(connect);
    return this.expect('connack');
  }

  /** Encodes for `version`, by default the protocol level this client opened with. */
  send(packet: Packet, version: ProtocolVersion = this.version): void {
    this.socket.write(encode(packet, version));
  }

  sendBytes(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** The next packet received (already buffered, or the next to arrive). */
  next(): Promise<Packet> {
    const p = this.inbox.shift();
    if (p !== undefined) return Promise.resolve(p);
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** The next packet, which must be of type `cmd`. */
  async expect<C extends Packet['cmd']>(cmd: C): Promise<Extract<Packet, { cmd: C }>> {
    const p = await this.next();
    if (p.cmd !== cmd) throw new Error(`expected ${cmd}, got ${p.cmd}: ${JSON.stringify(p)}`);
    return p as Extract<Packet, { cmd: C }>;
  }

  /** Packets received and not yet taken. */
  get pending(): readonly Packet[] {
    return this.inbox;
  }

  /** Resolves when the server has closed the connection. */
  waitClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.closedWaiters.push(resolve));
  }

  /** Ends the socket without DISCONNECT (abnormal for the broker: the will fires). */
  destroy(): void {
    this.socket.destroy();
  }

  /** Sends DISCONNECT and closes. */
  disconnect(): Promise<void> {
    this.send({ cmd: 'disconnect' });
    this.socket.end();
    return this.waitClosed();
  }

  private receive(p: Packet): void {
    if (this.waiting !== null) {
      const w = this.waiting;
      this.waiting = null;
      w.resolve(p);
    } else {
      this.inbox.push(p);
    }
  }
}
