import { encodePublishHeader, encodePublishShared, encodePublishV5, type QoS } from '@tern/protocol';

/**
 * An application message as the broker holds it: stored once, shared by reference by every
 * subscriber queue and the retained index that needs it [mosquitto's store-once habit].
 * Its PUBLISH bytes are encoded at most once per outbound shape and shared by all recipients
 * of that shape; QoS 1/2 recipients copy the shared bytes and patch in their packet id.
 */
export class Message {
  readonly topic: string;
  /** Initially a view of the received bytes; ownPayload() or keepQueued() moves it out when kept. */
  payload: Buffer;
  /** QoS the publisher sent it with; a subscriber gets min(this, granted) [MQTT-3.8.4-6]. */
  readonly qos: QoS;
  /** Whether the publisher asked for it to be retained. */
  readonly retain: boolean;
  /** Client id of the publisher ('' for the broker itself, e.g. $SYS). */
  readonly origin: string;
  /**
   * Unique within the node (the ingress member's index * 2^32 + a counter); lets a member
   * that hears of a message twice, while a session moves between members, deliver it once.
   * 0 when nothing forwards it.
   */
  id = 0;
  /**
   * When it entered the broker (ms since the epoch): retained copies keep the latest, and an
   * MQTT 5 message expiry interval counts from it.
   */
  time = 0;
  /**
   * MQTT 5: the publisher's own PUBLISH properties as wire bytes (payload format indicator,
   * content type, response topic, correlation data, user properties in order), passed on
   * unchanged [MQTT-3.3.2-4] [MQTT-3.3.2-17]; never the message expiry interval, topic alias or
   * subscription identifiers, which are written per recipient. Null: none.
   */
  properties: Buffer | null = null;
  /** MQTT 5 message expiry interval in seconds, counted from `time`; 0: never expires. */
  expiryInterval = 0;
  private owned = false;
  private template0: PublishTemplate | null = null;
  private template1: PublishTemplate | null = null;
  private template2: PublishTemplate | null = null;
  /** MQTT 5 shapes shared by recipients that need nothing of their own, by QoS. */
  private templates5: (PublishTemplate | undefined)[] | null = null;

  constructor(topic: string, payload: Buffer, qos: QoS, retain: boolean, origin: string) {
    this.topic = topic;
    this.payload = payload;
    this.qos = qos;
    this.retain = retain;
    this.origin = origin;
  }

  /**
   * Copies the payload out of the socket chunk it arrived in, once, so a message kept in a
   * queue or the retained index holds only its own bytes, not a whole read buffer.
   */
  ownPayload(): void {
    if (this.owned) return;
    this.owned = true;
    if (this.payload.length < this.payload.buffer.byteLength) this.payload = Buffer.from(this.payload);
  }

  /**
   * Keeps the message in a session queue for a QoS `qos` delivery, letting go of the socket
   * chunk it arrived in. A small payload becomes a view of the shared PUBLISH bytes encoded
   * now (one copy, not one to own it and another to encode it later); a large one is copied
   * once and keeps being sent by reference after its head.
   */
  keepQueued(qos: 1 | 2): void {
    if (this.payload.length >= LARGE_PAYLOAD) {
      this.ownPayload();
      this.template(qos, false);
      return;
    }
    const shared = this.template(qos, false);
    if (this.owned) return;
    this.owned = true;
    const bytes = shared.bytes;
    // v3.1.1 PUBLISH bytes end with the payload.
    this.payload = bytes.subarray(bytes.length - this.payload.length);
  }

  /**
   * The PUBLISH to send for a delivery at `qos` with `retain` (clear for every message
   * forwarded to an existing subscription [MQTT-3.3.1-9]; set for a retained message sent
   * on SUBSCRIBE [MQTT-3.3.1-8]), 3.1/3.1.1 encoding. Shared by every recipient: copy and
   * patch the packet id (QoS > 0), never change it. Cached except the rare retained shapes.
   */
  template(qos: QoS, retain: boolean): PublishTemplate {
    if (retain) return this.encode(qos, true);
    const slot = qos;
    let t = slot === 0 ? this.template0 : slot === 1 ? this.template1 : this.template2;
    if (t === null) {
      t = this.encode(qos, false);
      if (slot === 0) this.template0 = t;
      else if (slot === 1) this.template1 = t;
      else this.template2 = t;
    }
    return t;
  }

  /** When it expires (ms since the epoch), or Infinity. */
  get expiresAt(): number {
    return this.expiryInterval === 0 ? Number.POSITIVE_INFINITY : this.time + this.expiryInterval * 1000;
  }

  /** Whether its message expiry interval has passed: it is then never delivered [MQTT-3.3.2-5]. */
  expired(now: number): boolean {
    return this.expiryInterval !== 0 && now >= this.time + this.expiryInterval * 1000;
  }

  /** Whole seconds left of its expiry interval (at least 1 while not expired; 0 when none). */
  secondsLeft(now: number): number {
    if (this.expiryInterval === 0) return 0;
    return Math.max(1, Math.ceil((this.time + this.expiryInterval * 1000 - now) / 1000));
  }

  /**
   * The MQTT 5 PUBLISH for a recipient that needs nothing of its own (no topic alias, no
   * subscription identifier; the message has no expiry interval): shared like template().
   */
  template5(qos: QoS, retain: boolean): PublishTemplate {
    if (retain) return this.encode5(qos, true);
    this.templates5 ??= [];
    let t = this.templates5[qos];
    if (t === undefined) {
      t = this.encode5(qos, false);
      this.templates5[qos] = t;
    }
    return t;
  }

  private encode5(qos: QoS, retain: boolean): PublishTemplate {
    const large = this.payload.length >= LARGE_PAYLOAD;
    const { bytes, idOffset } = encodePublishV5(
      {
        topic: this.topic,
        qos,
        retain,
        messageId: 0,
        payload: this.payload,
        ownProperties: this.properties,
        extras: null,
      },
      large,
    );
    return { bytes, idOffset, payload: large ? this.payload : null };
  }

  private encode(qos: QoS, retain: boolean): PublishTemplate {
    const packet = { cmd: 'publish' as const, topic: this.topic, payload: this.payload, qos, retain, dup: false };
    if (this.payload.length >= LARGE_PAYLOAD) {
      const head = encodePublishHeader(packet, 4);
      return { bytes: head, idOffset: qos === 0 ? -1 : head.length - 2, payload: this.payload };
    }
    const { bytes, idOffset } = encodePublishShared(packet, 4);
    return { bytes, idOffset, payload: null };
  }
}

/**
 * Payloads at least this large are not copied into each turn's output: their PUBLISH goes out
 * as a head and the payload by reference (one writev).
 */
export const LARGE_PAYLOAD = 16 * 1024;

/**
 * Encoded PUBLISH bytes shared by the recipients of one shape: `bytes` is the whole packet,
 * or only its head when `payload` is set (the payload follows by reference). `idOffset` is
 * where a recipient's packet id goes (-1 at QoS 0).
 */
export interface PublishTemplate {
  bytes: Buffer;
  idOffset: number;
  payload: Buffer | null;
}
