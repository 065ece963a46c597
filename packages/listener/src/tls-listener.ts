import { createServer, type SecureContextOptions, type TLSSocket, type TlsOptions } from 'node:tls';
import { type BindOptions, bindServer } from './bind.js';
import {
  type AdmissionOptions,
  describeListener,
  gateOf,
  guardAccepts,
  handshakePeer,
  type Listener,
} from './tcp-listener.js';

/**
 * Whether clients are asked for a certificate: 'none' (not asked), 'request' (asked; one that
 * is missing or not signed by the CA does not stop the handshake), 'require' (mutual TLS: a
 * client without a certificate signed by the CA is refused during the handshake).
 */
export type ClientCertificateMode = 'none' | 'request' | 'require';

/** The PEM texts a TLS server is made from; replaced as a whole on reload. */
export interface TlsMaterial {
  cert: string;
  key: string;
  /** CA certificates clients' certificates are checked against; null = Node's default CAs. */
  ca: string | null;
}

export interface TlsSettings extends TlsMaterial {
  clientCertificate: ClientCertificateMode;
}

/** The secure-context part of the settings: what setSecureContext swaps on reload. */
export function secureContextOptions(material: TlsMaterial): SecureContextOptions {
  return material.ca === null
    ? { cert: material.cert, key: material.key }
    : { cert: material.cert, key: material.key, ca: material.ca };
}

/** Options for a tls.Server or an https.Server (the WSS listener). */
export function tlsServerOptions(settings: TlsSettings): TlsOptions {
  return {
    ...secureContextOptions(settings),
    requestCert: settings.clientCertificate !== 'none',
    rejectUnauthorized: settings.clientCertificate === 'require',
  };
}

/** A listener whose certificate can be replaced while it runs. */
export interface SecureListener extends Listener {
  /** New connections get this certificate, key and CA; open ones keep theirs. */
  setSecureContext(material: TlsMaterial): void;
}

export interface TlsListenerOptions extends BindOptions, AdmissionOptions {
  tls: TlsSettings;
  /** A connection whose handshake completed (and, with 'require', whose certificate checked out). */
  onSocket: (socket: TLSSocket) => void;
  /** A handshake failed: no or a bad client certificate, a plain-TCP client, a reset... */
  onHandshakeError?: (error: Error, remoteAddress: string | undefined) => void;
}

/** Binds a TLS server (MQTT over TLS) and hands every socket that completes its handshake to `onSocket`. */
export async function listenTls(options: TlsListenerOptions): Promise<SecureListener> {
  const gate = gateOf(options);
  const server = createServer(tlsServerOptions(options.tls), options.onSocket);
  guardAccepts(server, gate, options.onRefused);
  const onHandshakeError = options.onHandshakeError;
  server.on('tlsClientError', (error, socket) => onHandshakeError?.(error, handshakePeer(socket)));
  const { port, fd } = await bindServer(server, options);
  return describeListener(server, gate, port, fd, {
    setSecureContext: (material: TlsMaterial) => server.setSecureContext(secureContextOptions(material)),
  });
}
