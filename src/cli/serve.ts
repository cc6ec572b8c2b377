import type { Command } from 'commander';
import { loadConfig, renderConfig } from '../config/load.js';
import { startDaemon } from '../daemon/daemon.js';
import { errorMessage } from '../errors/policyd-error.js';
import { daemonLogger } from '../telemetry/logger.js';
import { settingFlags } from './settings-options.js';

function configFrom(command: Command) {
  return loadConfig({ file: command.getOptionValue('config') as string | undefined, env: process.env, flags: settingFlags(command) });
}

/** `wasm-policyd config`: the effective configuration, secrets redacted. */
export function runConfig(command: Command): void {
  process.stdout.write(renderConfig(configFrom(command)));
}

/** `wasm-policyd serve`: start, turn ready, drain on SIGTERM/SIGINT and exit 0. */
export async function runServe(command: Command): Promise<void> {
  const config = configFrom(command);
  const logger = daemonLogger(config.log.level, config.log.maxBufferedKb);
  const daemon = await startDaemon(config, logger).catch((err: unknown) => {
    logger.fatal({ error: errorMessage(err) }, 'cannot start');
    throw err;
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.graceMs }, 'draining');
    daemon.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0); // pino writes out what is buffered on exit
      },
      (err: unknown) => {
        logger.error({ error: errorMessage(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
