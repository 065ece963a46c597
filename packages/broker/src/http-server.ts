/**
 * The node's HTTP endpoint for operators: Prometheus metrics, liveness and readiness probes,
 * and the log level. Plain node:http; no route does work per MQTT packet.
 *
 *   GET  /metrics           Prometheus text format
 *   GET  /health            200 "ok" while the process serves
 *   GET  /ready             200 when accepting MQTT clients, 503 with the reason otherwise
 *   PUT  /log-level         level from ?level=, a form body (level=debug), JSON or bare text
 *   POST /log-level         the same
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ListenError } from '@tern/listener';
import type { LogLevel } from './config.js';
import type { Logger } from './logger.js';

export type ReadyState = { ready: true } | { ready: false; reason: string };

export interface HttpServerOptions {
  /** Address to bind (config.metricsHost). */
  host: string;
  /** Port to bind (config.metricsPort); 0 picks a free one. */
  port: number;
  /** What /metrics serves (a TernMetrics). */
  metrics: { readonly contentType: string; scrape(): Promise<string> };
  /** /health answers 503 when this returns false. @default always live */
  isLive?: () => boolean;
  /** /ready: whether the node accepts MQTT clients now, and if not, why. */
  isReady: () => ReadyState;
  /** Applies a new log level (validated here). */
  setLogLevel: (level: LogLevel) => void;
  log: Logger;
}

export interface HttpServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** Stops accepting and closes open connections (scrapes in progress are cut). */
  close(): Promise<void>;
}

const LEVELS: Readonly<Record<LogLevel, true>> = {
  fatal: true,
  error: true,
  warn: true,
  info: true,
  debug: true,
  trace: true,
  silent: true,
};
const LEVEL_LIST = Object.keys(LEVELS).join('|');

/** Longest /log-level body read; anything longer is refused. */
const MAX_BODY = 1024;

/** Binds the endpoint; rejects with a ListenError (stable code, one-line message) if it cannot. */
export function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const server = createServer((req, res) => {
    route(options, req, res).catch((err: unknown) => {
      options.log.error({ err, url: req.url }, 'HTTP request failed');
      if (!res.headersSent) reply(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new ListenError(options.host, options.port, err));
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      server.on('error', (err) => options.log.error({ err }, 'HTTP server error'));
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : options.port;
      options.log.info({ host: options.host, port }, 'listening for HTTP (/metrics, /health, /ready, /log-level)');
      resolve({ port, close: () => close(server) });
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Prometheus keeps its connection open between scrapes: don't wait for it to time out.
    server.closeAllConnections();
  });
}

async function route(options: HttpServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const method = req.method ?? 'GET';
  const read = method === 'GET' || method === 'HEAD';
  switch (url.pathname) {
    case '/metrics': {
      if (!read) return notAllowed(res, 'GET, HEAD');
      const body = await options.metrics.scrape();
      return reply(res, 200, body, options.metrics.contentType);
    }
    case '/health':
      if (!read) return notAllowed(res, 'GET, HEAD');
      if (options.isLive !== undefined && !options.isLive()) return reply(res, 503, 'not live\n');
      return reply(res, 200, 'ok\n');
    case '/ready': {
      if (!read) return notAllowed(res, 'GET, HEAD');
      const state = options.isReady();
      return state.ready ? reply(res, 200, 'ready\n') : reply(res, 503, `not ready: ${state.reason}\n`);
    }
    case '/log-level': {
      if (method !== 'PUT' && method !== 'POST') return notAllowed(res, 'PUT, POST');
      const body = await readBody(req);
      if (body === null) return reply(res, 413, `body longer than ${MAX_BODY} bytes\n`);
      const level = url.searchParams.get('level') ?? levelFromBody(body, req.headers['content-type']);
      if (level === null || !Object.hasOwn(LEVELS, level)) {
        return reply(res, 400, `level must be one of ${LEVEL_LIST}, got ${JSON.stringify(level ?? '')}\n`);
      }
      // Logged before the change, so the line shows even when the new level hides info.
      options.log.info(
        { from: options.log.level, to: level, remote: req.socket.remoteAddress },
        'log level change requested over HTTP',
      );
      options.setLogLevel(level as LogLevel);
      return reply(res, 200, `log level ${level}\n`);
    }
    default:
      return reply(res, 404, 'not found\n');
  }
}

function reply(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function notAllowed(res: ServerResponse, allow: string): void {
  res.setHeader('Allow', allow);
  reply(res, 405, 'method not allowed\n');
}

/** The request body as text, or null when it exceeds MAX_BODY (the rest is not read). */
function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        req.removeAllListeners('data');
        req.resume();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** `{"level":"debug"}`, `level=debug` or `debug`; null when none is given. */
function levelFromBody(body: string, contentType: string | undefined): string | null {
  const text = body.trim();
  if (text.length === 0) return null;
  if (contentType?.includes('json') === true || text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as { level?: unknown };
      return typeof parsed.level === 'string' ? parsed.level : null;
    } catch {
      return null;
    }
  }
  if (text.includes('=')) return new URLSearchParams(text).get('level');
  return text;
}
