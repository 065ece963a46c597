export {
  Connection,
  type ConnectionCounters,
  type ConnectionHandler,
  type ConnectionOptions,
} from './connection.js';
export { ListenError, listenTcp, type TcpListener, type TcpListenerOptions } from './tcp-listener.js';
