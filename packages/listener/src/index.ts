export { type BindOptions, type Bound, bindServer, closeServer, ListenError } from './bind.js';
export {
  Connection,
  type ConnectionCounters,
  type ConnectionHandler,
  type ConnectionOptions,
} from './connection.js';
export { ConnectionGate } from './connection-gate.js';
export {
  type AdmissionOptions,
  type Listener,
  listenTcp,
  type TcpListener,
  type TcpListenerOptions,
} from './tcp-listener.js';
export {
  type ClientCertificateMode,
  listenTls,
  type SecureListener,
  type TlsListenerOptions,
  type TlsMaterial,
  type TlsSettings,
} from './tls-listener.js';
export type { Transport } from './transport.js';
export { listenWebSocket, type WebSocketListener, type WebSocketListenerOptions } from './websocket-listener.js';
export { WebSocketFrameError, WebSocketTransport } from './websocket-transport.js';
