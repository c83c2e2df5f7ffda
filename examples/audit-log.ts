/**
 * Audit events as JSON lines with pino: one line per refusal, token change and (optionally)
 * token use, in a log of their own that a log shipper (Vector, Fluent Bit, Filebeat) can tail.
 *
 *   AUDIT_LOG=/var/log/bitbucket-proxy/audit.log node --import tsx examples/audit-log.ts
 *
 * docs/operations.md ("Audit log") explains every event; test/examples/audit-log.test.ts runs this.
 */
import { pathToFileURL } from 'node:url';
import { type Logger, pino } from 'pino';
import { type AuditEvent, createTokenGate, type EventListener } from '../lib/index.js';

/**
 * A logger for audit events only: ISO times, no pid or host noise (add your own `base`), and
 * nothing redacted because events never carry a secret.
 */
export function createAuditLogger(destination: string | number = 1): Logger {
  return pino(
    { base: { log: 'audit' }, timestamp: pino.stdTimeFunctions.isoTime, level: 'info' },
    pino.destination({ dest: destination, mkdir: true, sync: false }),
  );
}

/**
 * `onEvent` for pino: refusals at `warn`, token changes and reminders at `info`, successful uses
 * (`auditSuccess: true`) at `debug`. The event's own `time` gives way to pino's, which is the
 * same moment.
 */
export function auditListener(logger: Logger): EventListener {
  return (event: AuditEvent) => {
    const { time: _time, ...fields } = event;
    if (event.type === 'auth.denied') logger.warn(fields, event.type);
    else if (event.type === 'auth.succeeded') logger.debug(fields, event.type);
    else logger.info(fields, event.type);
  };
}

async function main(): Promise<void> {
  const logger = createAuditLogger(process.env['AUDIT_LOG'] || 1);
  const gate = createTokenGate({ onEvent: auditListener(logger) });
  const { info } = await gate.tokens.create({ user: 'alice', name: 'laptop', scope: 'read' });
  await gate.tokens.revoke(info.id, { actor: 'admin' });
  await gate.close();
  logger.flush();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
