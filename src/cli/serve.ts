import type { Command } from 'commander';
import { pino } from 'pino';
import { loadConfig, renderConfig } from '../config/load.js';
import { startDaemon } from '../daemon/daemon.js';
import { errorMessage } from '../errors/policyd-error.js';
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
  const logger = pino(
    {
      level: config.log.level,
      base: { service: 'wasm-policyd' },
      // What log pipelines (Loki, Elasticsearch, Cloud Logging) read without a parser: ISO time and level names.
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination(2),
  );
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
        logger.flush();
        process.exit(0);
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
