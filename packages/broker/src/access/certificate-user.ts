import type { Transport } from '@tern/listener';

/**
 * The user a TLS (or WSS) client's certificate names: the subject CN of a certificate that
 * was verified against tlsCa, else null (no certificate, an unverified one, a plain socket,
 * or a subject with no or several CNs).
 */
export function certificateUser(socket: Transport): string | null {
  if (socket.authorized !== true || socket.getPeerCertificate === undefined) return null;
  const cn: unknown = socket.getPeerCertificate().subject?.CN;
  return typeof cn === 'string' && cn.length > 0 ? cn : null;
}
