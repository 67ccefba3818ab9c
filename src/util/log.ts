/** Structured JSON logs (pino) to stderr; every line about a guest carries `guest`. */
import { pino } from 'pino';
import type { Logger } from '../ports/log.js';

export function createLogger(name: string, level = process.env.ROAM6_LOG_LEVEL ?? 'info'): Logger & { child(b: Record<string, unknown>): Logger } {
  return pino(
    {
      name,
      level,
      base: { pid: process.pid, svc: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Key material never reaches a log line, whatever a caller passes.
      redact: { paths: ['key', '*.key', 'sas[*].key', 'token', '*.token'], censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
