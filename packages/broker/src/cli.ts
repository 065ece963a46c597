#!/usr/bin/env node
/**
 * The `tern` command: parse flags, load and validate the config, start the node, and turn
 * signals into lifecycle steps. Any start-up failure is one line on stderr and exit code 1.
 *
 *   SIGTERM, SIGINT  graceful shutdown, bounded by shutdownTimeoutMs; a second one exits at once
 *   SIGHUP           reload the config file (and flags, env) and apply what can change live;
 *                    read the password and ACL files again
 *   SIGUSR2          toggle the log level between debug and the configured level
 *
 * `tern passwd` manages a password file (passwd.ts).
 */
import { setFlagsFromString } from 'node:v8';
import { ConfigError, HELP, loadConfig, type ParsedArgs, parseArgs } from './config.js';
import { createRootLogger, type Logger } from './logger.js';
import { TernNode } from './node.js';
import { runPasswd } from './passwd.js';
import { VERSION } from './version.js';

/**
 * V8's memory reducer runs full mark-compacts whenever allocation slows down, to hand memory
 * back: for a broker at a steady, modest rate that is exactly the normal state, and each one
 * stalls the event loop for 3 to 8 ms, which was most of Tern's latency tail (p99 at 1000
 * msgs/s 2.2 ms with it, 0.4 ms without: benchmarks/RESULTS.md). Set before any worker thread
 * (and its heap) exists; the flag is process-wide.
 */
setFlagsFromString('--no-memory-reducer');
/**
 * In its place, a routing worker runs one full collection when a storm of connections has
 * settled (heap-trim.ts), through the `gc` function this flag gives every worker's context.
 */
setFlagsFromString('--expose-gc');

async function main(): Promise<void> {
  if (process.argv[2] === 'passwd') {
    process.exitCode = await runPasswd(process.argv.slice(3));
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(HELP);
    return;
  }
  if (args.version) {
    process.stdout.write(`tern ${VERSION}\n`);
    return;
  }
  const config = loadConfig(args);
  if (args.printConfig) {
    process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    return;
  }
  const log = createRootLogger({ level: config.logLevel, pretty: config.logPretty, base: { node: config.nodeName } });
  const node = await TernNode.start(config, log);
  handleSignals(node, args, log);
  node.supervisor.onFatal = () => {
    // A worker thread ended (it could not recover): stop the rest cleanly and let the service
    // manager restart the node.
    node.stop().finally(() => process.exit(1));
  };
}

function handleSignals(node: TernNode, args: ParsedArgs, log: Logger): void {
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now, without finishing the shutdown');
      process.exit(1);
    }
    stopping = true;
    const timeoutMs = node.config.shutdownTimeoutMs;
    log.info({ signal, timeoutMs }, 'shutting down');
    const deadline = setTimeout(() => {
      log.error({ timeoutMs }, 'shutdown did not finish in time: exiting');
      process.exit(1);
    }, timeoutMs);
    deadline.unref();
    node.stop().then(
      () => {
        log.info('shutdown complete');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  process.on('SIGHUP', () => {
    try {
      node.reload(loadConfig(args));
    } catch (err) {
      // A bad edit must not take a running broker down: keep the old settings.
      log.error({ code: (err as { code?: string }).code }, `config reload refused: ${(err as Error).message}`);
    }
  });

  let debugToggled = false;
  let levelBeforeDebug = node.config.logLevel;
  process.on('SIGUSR2', () => {
    if (debugToggled) {
      node.setLogLevel(levelBeforeDebug);
    } else {
      levelBeforeDebug = node.config.logLevel;
      node.setLogLevel('debug');
    }
    debugToggled = !debugToggled;
  });
}

main().catch((err: unknown) => {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const known = err instanceof ConfigError || (typeof code === 'string' && code.startsWith('TERN_'));
  process.stderr.write(`tern: ${message}${known ? '' : ` (${code ?? 'unexpected error'})`}\n`);
  if (!known && err instanceof Error && process.env.TERN_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
