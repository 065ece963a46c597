import { type EncodedPublish, encodePublishShared, type QoS } from '@tern/protocol';

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
  /** When it entered the broker (ms since the epoch): retained copies keep the latest. */
  time = 0;
  private owned = false;
  private bytes0: Buffer | null = null;
  private shared1: EncodedPublish | null = null;
  private shared2: EncodedPublish | null = null;

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
   * Keeps the message in a session queue for a QoS `qos` delivery: its shared PUBLISH bytes
   * are encoded now, and the payload becomes a view of them, so the socket chunk is let go
   * with one copy of the payload (not one to own it and another to encode it later), and a
   * resumed session's redelivery only copies ready bytes.
   */
  keepQueued(qos: 1 | 2): void {
    const shared = this.sharedBytes(qos);
    if (this.owned) return;
    this.owned = true;
    const bytes = shared.bytes;
    // v3.1.1 PUBLISH bytes end with the payload.
    this.payload = bytes.subarray(bytes.length - this.payload.length);
  }

  /**
   * PUBLISH bytes for a QoS 0 delivery to a 3.1/3.1.1 client, retain flag clear as for every
   * message forwarded to an existing subscription [MQTT-3.3.1-9]. Shared: never patch them.
   */
  qos0Bytes(): Buffer {
    let b = this.bytes0;
    if (b === null) {
      b = encodePublishShared(
        { cmd: 'publish', topic: this.topic, payload: this.payload, qos: 0, retain: false, dup: false },
        4,
      ).bytes;
      this.bytes0 = b;
    }
    return b;
  }

  /** Shared template for QoS 1 or 2 deliveries (packet id 0, to be copied and patched). */
  sharedBytes(qos: 1 | 2): EncodedPublish {
    let s = qos === 1 ? this.shared1 : this.shared2;
    if (s === null) {
      s = encodePublishShared(
        { cmd: 'publish', topic: this.topic, payload: this.payload, qos, retain: false, dup: false },
        4,
      );
      if (qos === 1) this.shared1 = s;
      else this.shared2 = s;
    }
    return s;
  }
}
