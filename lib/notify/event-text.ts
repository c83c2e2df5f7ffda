import { createHash } from 'node:crypto';

/**
 * What the sinks may say about an event. Events never carry a secret (the library's rule);
 * the sinks still take only scalar fields, drop any whose name speaks of one, and blank out
 * anything shaped like a token, so a new event type (or a careless listener's field) cannot
 * leak one into an e-mail or a webhook.
 */

/** An event as the sinks see it: any type, the ones other features add included. */
export interface SinkEvent {
  type: string;
  [field: string]: unknown;
}

const SECRET_NAME = /^(token|secret)$|password|passphrase|hash|jwt|verifier|credential|cookie|authorization/i;

/** The event's scalar fields a message may carry, token-shaped strings blanked. */
export function safeFields(
  event: SinkEvent,
  tokenShape: RegExp,
): Record<string, string | number | boolean | null> {
  const out: Record<string, string | number | boolean | null> = {};
  for (const [name, value] of Object.entries(event)) {
    if (SECRET_NAME.test(name)) continue;
    if (typeof value === 'string') out[name] = value.replace(tokenShape, '[redacted]');
    else if (typeof value === 'number' || typeof value === 'boolean' || value === null) out[name] = value;
  }
  return out;
}

/** Strings shaped like a token of this prefix (`bbt_` and at least 20 characters). */
export function tokenShapeOf(prefix: string): RegExp {
  return new RegExp(`${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_[0-9A-Za-z]{20,}`, 'g');
}

/**
 * What makes two reports of one event the same, for claiming it once per fleet: the type, the
 * token, and what tells reminders apart (lead time, expiry); the time only when nothing else does.
 */
export function eventIdentity(event: SinkEvent): string {
  const parts = [event.type, event['tokenId'], event['leadDays'], event['expiresAt'], event['replacedBy']];
  if (event['tokenId'] === undefined) parts.push(event['time']);
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 22);
}

/** A subject line and a plain-text body for a person, for any event type. */
export function eventMessage(
  fields: Record<string, string | number | boolean | null>,
  renewUrl: string | undefined,
): { subject: string; text: string } {
  const name = typeof fields['name'] === 'string' ? `"${fields['name']}"` : 'an API token';
  const owner = typeof fields['user'] === 'string' ? ` of ${fields['user']}` : '';
  const lines: string[] = [];
  let subject: string;
  switch (fields['type']) {
    case 'token.expiring':
      subject = `Your API token ${name} expires in ${fields['leadDays']} day${fields['leadDays'] === 1 ? '' : 's'}`;
      lines.push(
        `Your API token ${name} (${fields['tokenId']}) expires at ${fields['expiresAt']}.`,
        'Scripts and CI jobs that use it will fail with 401 from then on.',
        renewUrl === undefined
          ? 'Rotate it on the token pages before then, and put the new token where the old one is used.'
          : `Rotate it before then, and put the new token where the old one is used: ${renewUrl}`,
      );
      break;
    case 'token.leaked':
      subject = `API token ${name}${owner} was found exposed`;
      lines.push(
        `The API token ${name}${owner} (${fields['tokenId']}) was found where it should not be.`,
        'Treat it as known to others: it has been or should be revoked. Create a new one, and check',
        "the token's recent use in the audit log.",
      );
      break;
    default:
      subject = `API token event: ${fields['type']}${typeof fields['name'] === 'string' ? ` (${name})` : ''}`;
      lines.push(`Event ${fields['type']} for the API token ${name}${owner}.`);
  }
  lines.push('', 'Details:');
  for (const [key, value] of Object.entries(fields)) lines.push(`  ${key}: ${String(value)}`);
  return { subject, text: `${lines.join('\n')}\n` };
}
