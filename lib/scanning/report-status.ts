import type { RefUpdate } from './push-commands.js';

/**
 * A refusal in git's own words: the body of a `git-receive-pack` answer (report-status) that
 * refuses every ref, so git prints `! [remote rejected] <ref> (<reason>)`, with `messages` on
 * the side-band progress channel, which git prints as `remote: …` lines. Without side-band only
 * the reasons reach the user.
 */
export function refusalReport(
  updates: readonly RefUpdate[],
  capabilities: ReadonlySet<string>,
  reason: string,
  messages: readonly string[],
): Buffer {
  const report: Buffer[] = [pktLine('unpack ok\n')];
  for (const update of updates) report.push(pktLine(`ng ${update.ref} ${reason}\n`));
  report.push(FLUSH);
  const status = Buffer.concat(report);
  const sideBand = capabilities.has('side-band-64k') ? 65_515 : capabilities.has('side-band') ? 995 : 0;
  if (sideBand === 0) return status;
  const out: Buffer[] = [];
  for (const message of messages) out.push(...banded(2, Buffer.from(`${message}\n`), sideBand));
  out.push(...banded(1, status, sideBand), FLUSH);
  return Buffer.concat(out);
}

const FLUSH = Buffer.from('0000');

function pktLine(payload: string | Buffer): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  return Buffer.concat([Buffer.from((data.length + 4).toString(16).padStart(4, '0')), data]);
}

/** `data` on side-band channel `band`, in packets of at most `max` bytes of data. */
function banded(band: number, data: Buffer, max: number): Buffer[] {
  const packets: Buffer[] = [];
  for (let at = 0; at < data.length; at += max)
    packets.push(pktLine(Buffer.concat([Buffer.from([band]), data.subarray(at, at + max)])));
  return packets;
}
