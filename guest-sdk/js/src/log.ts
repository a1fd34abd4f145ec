// Structured logging into the execution's log (sluice:flow/log). `console.log` also
// reaches the log: the host captures the guest's stdout and stderr.

import { write } from 'sluice:flow/log@0.1.0';

export type Fields = Record<string, unknown>;

function emit(level: 'trace' | 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Fields) {
  write(level, message, fields === undefined ? undefined : JSON.stringify(fields));
}

/** Log lines at each level; `fields` is an optional object of structured fields. */
export const log = {
  trace: (message: string, fields?: Fields) => emit('trace', message, fields),
  debug: (message: string, fields?: Fields) => emit('debug', message, fields),
  info: (message: string, fields?: Fields) => emit('info', message, fields),
  warn: (message: string, fields?: Fields) => emit('warn', message, fields),
  error: (message: string, fields?: Fields) => emit('error', message, fields),
};

export type Logger = typeof log;
