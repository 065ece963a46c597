/**
 * Counters the broker keeps for $SYS (and, later, Prometheus). Plain numbers bumped on the
 * hot path; read only by the periodic publishers.
 */
export class BrokerStats {
  readonly startedAt = Date.now();
  /** Connections accepted (sockets), ever. */
  connectionsAccepted = 0;
  /** Connections refused by maxConnections. */
  connectionsRefused = 0;
  /** Clients with a completed CONNECT, now. */
  clientsConnected = 0;
  /** Highest clientsConnected seen. */
  clientsMaximum = 0;
  messagesReceived = 0;
  messagesSent = 0;
  publishReceived = 0;
  publishSent = 0;
  bytesReceived = 0;
  bytesSent = 0;
  /** QoS 0 deliveries dropped because the subscriber's socket was too far behind. */
  droppedSlowSubscriber = 0;
  /** QoS 1/2 deliveries dropped because a session queue was full. */
  droppedQueueFull = 0;
  /** QoS 0 messages for offline sessions (never queued). */
  droppedOffline = 0;
  willsPublished = 0;
  protocolErrors = 0;
  keepaliveTimeouts = 0;
  takeovers = 0;

  get droppedTotal(): number {
    return this.droppedSlowSubscriber + this.droppedQueueFull + this.droppedOffline;
  }
}
