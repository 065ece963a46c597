/**
 * Acknowledgements written from shared 4-byte templates: the connection copies a template
 * into its outgoing Buffer with the packet id patched in, so an ack allocates nothing.
 */
import type { Connection } from '@tern/listener';
import { encode } from '@tern/protocol';

/** Fixed header byte 1 per ack type; PUBREL has the reserved flags 0b0010 [MQTT-3.6.1-1]. */
const PUBACK = Buffer.from([0x40, 2, 0, 0]);
const PUBREC = Buffer.from([0x50, 2, 0, 0]);
const PUBREL = Buffer.from([0x62, 2, 0, 0]);
const PUBCOMP = Buffer.from([0x70, 2, 0, 0]);
/** Where the packet id sits in a 3.1.1 ack. */
const ID_OFFSET = 2;

export function writePuback(conn: Connection, id: number): void {
  conn.writeWithId(PUBACK, ID_OFFSET, id);
}

export function writePubrec(conn: Connection, id: number): void {
  conn.writeWithId(PUBREC, ID_OFFSET, id);
}

export function writePubrel(conn: Connection, id: number): void {
  conn.writeWithId(PUBREL, ID_OFFSET, id);
}

export function writePubcomp(conn: Connection, id: number): void {
  conn.writeWithId(PUBCOMP, ID_OFFSET, id);
}

/** An MQTT 5 ack with a reason code other than success (success uses the templates above). */
export function writeAckWithReason(
  conn: Connection,
  cmd: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp',
  id: number,
  reasonCode: number,
): void {
  conn.write(encode({ cmd, messageId: id, reasonCode }, 5));
}
