#!/usr/bin/env node
/**
 * The `tern` command: parse flags, load and validate the config, start the broker, stop it
 * cleanly on SIGINT/SIGTERM. Any start-up failure is one line on stderr and exit code 1.
 */
import { Broker } from './broker.js';
import { ConfigError, HELP, loadConfig, parseArgs } from './config.js';
import { createRootLogger } from './logger.js';
import { VERSION } from './version.js';

async function main(): Promise<void> {
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
  const log = createRootLogger(config.logLevel);
  const broker = new Broker(config, log);
  await broker.start();
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    broker.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const known = err instanceof ConfigError || (typeof code === 'string' && code.startsWith('TERN_'));
  process.stderr.write(`tern: ${message}${known ? '' : ` (${code ?? 'unexpected error'})`}\n`);
  if (!known && err instanceof Error && process.env.TERN_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
