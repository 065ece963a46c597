/**
 * Wire helpers shared by the load tool and the null broker: packets are encoded with
 * @tern/protocol once (templates), then copied and patched per message; incoming bytes are
 * framed by a scanner that hands out (first byte, buffer, body start, body end) and builds no
 * packet objects, so the tool spends less per message than a broker does.
 *
 * The payload of every benchmark PUBLISH starts with a 14-byte header:
 *   u16 publisher index | u32 sequence number | f64 send time (performance.now(), ms)
 * Publishers and subscribers live in one process, so the send time is on the receiver's clock.
 */
import { DISCONNECT_BYTES, encode, encodeAck, encodePublishShared } from '@tern/protocol';

export const PAYLOAD_HEADER = 14;
export { DISCONNECT_BYTES, encodeAck };

/** Packet types (first byte >> 4). */
export const CONNECT = 1;
export const CONNACK = 2;
export const PUBLISH = 3;
export const PUBACK = 4;
export const PUBREC = 5;
export const PUBREL = 6;
export const PUBCOMP = 7;
export const SUBSCRIBE = 8;
export const SUBACK = 9;
export const PINGREQ = 12;
export const PINGRESP = 13;
export const DISCONNECT = 14;

/** First bytes of the acknowledgements the tool sends (PUBREL has its reserved flags 0b0010). */
export const PUBACK_FIRST = 0x40;
export const PUBREC_FIRST = 0x50;
export const PUBREL_FIRST = 0x62;
export const PUBCOMP_FIRST = 0x70;

/** CONNECT for MQTT 3.1.1. */
export function connectBytes(clientId, clean, keepalive = 300) {
  return encode({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, keepalive, clientId }, 4);
}

export function subscribeBytes(messageId, topic, qos) {
  return encode({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] }, 4);
}

export function connackBytes(sessionPresent, returnCode) {
  return encode({ cmd: 'connack', sessionPresent, returnCode }, 4);
}

export function subackBytes(messageId, granted) {
  return encode({ cmd: 'suback', messageId, granted }, 4);
}

/** A PUBLISH with an empty payload: with retain set, it deletes the topic's retained message. */
export function emptyPublishBytes(topic, retain) {
  return encode({ cmd: 'publish', topic, qos: 0, retain, dup: false, payload: Buffer.alloc(0) }, 4);
}

/**
 * One PUBLISH encoded once; `fill` copies it into a batch buffer and patches the payload
 * header (and the packet id for QoS 1 and 2).
 */
export class PublishTemplate {
  constructor(topic, qos, payloadSize, publisherIndex, retain = false) {
    if (payloadSize < PAYLOAD_HEADER) throw new Error(`payload must be at least ${PAYLOAD_HEADER} bytes`);
    const payload = Buffer.alloc(payloadSize, 0x61);
    const { bytes, idOffset } = encodePublishShared(
      { cmd: 'publish', topic, qos, retain, dup: false, payload, messageId: qos > 0 ? 1 : undefined },
      4,
    );
    bytes.writeUInt16BE(publisherIndex, bytes.length - payloadSize);
    this.bytes = bytes;
    this.length = bytes.length;
    this.idOffset = idOffset;
    this.payloadOffset = bytes.length - payloadSize;
  }

  /** Writes one PUBLISH at `offset` of `buf`; returns the offset after it. */
  fill(buf, offset, seq, sentAt, packetId) {
    this.bytes.copy(buf, offset);
    const p = offset + this.payloadOffset;
    buf.writeUInt32BE(seq >>> 0, p + 2);
    buf.writeDoubleBE(sentAt, p + 6);
    if (this.idOffset >= 0) {
      buf[offset + this.idOffset] = packetId >>> 8;
      buf[offset + this.idOffset + 1] = packetId & 0xff;
    }
    return offset + this.length;
  }
}

/**
 * Frames a byte stream into MQTT packets. A packet whole inside a chunk is handed out in place;
 * only a packet cut by a chunk boundary is copied, into a buffer of its exact size.
 * `onPacket(first, buf, bodyStart, bodyEnd)` is called for each packet in order.
 */
export class FrameScanner {
  constructor(onPacket) {
    this.onPacket = onPacket;
    /** Bytes of a cut packet: its exact size when the header was whole, else the cut header. */
    this.pend = null;
    this.pendFill = 0;
    this.pendBody = 0;
  }

  push(chunk) {
    let pos = 0;
    if (this.pend !== null) {
      if (this.pendBody === 0) {
        // The fixed header itself was cut (at most 4 bytes held): join and rescan.
        const joined = Buffer.concat([this.pend, chunk]);
        this.pend = null;
        this.push(joined);
        return;
      }
      const pend = this.pend;
      const take = Math.min(pend.length - this.pendFill, chunk.length);
      chunk.copy(pend, this.pendFill, 0, take);
      this.pendFill += take;
      if (this.pendFill < pend.length) return;
      this.pend = null;
      this.onPacket(pend[0], pend, this.pendBody, pend.length);
      pos = take;
    }
    const len = chunk.length;
    while (pos < len) {
      let i = pos + 1;
      let remaining = 0;
      let multiplier = 1;
      let whole = false;
      while (i < len) {
        const b = chunk[i++];
        remaining += (b & 0x7f) * multiplier;
        if (b < 0x80) {
          whole = true;
          break;
        }
        if (i - pos > 4) throw new Error('malformed remaining length');
        multiplier *= 128;
      }
      if (!whole) {
        this.pend = Buffer.from(chunk.subarray(pos));
        this.pendBody = 0;
        return;
      }
      const end = i + remaining;
      if (end > len) {
        const pend = Buffer.allocUnsafe(end - pos);
        chunk.copy(pend, 0, pos);
        this.pend = pend;
        this.pendFill = len - pos;
        this.pendBody = i - pos;
        return;
      }
      this.onPacket(chunk[pos], chunk, i, end);
      pos = end;
    }
  }
}

/** Offset of the payload of a PUBLISH body [start, end); `first` gives the QoS. */
export function publishPayloadOffset(first, buf, start) {
  const topicLength = (buf[start] << 8) | buf[start + 1];
  return start + 2 + topicLength + ((first & 0x06) !== 0 ? 2 : 0);
}

/** Packet id of a QoS > 0 PUBLISH body starting at `start`. */
export function publishPacketId(buf, start) {
  const p = start + 2 + ((buf[start] << 8) | buf[start + 1]);
  return (buf[p] << 8) | buf[p + 1];
}
