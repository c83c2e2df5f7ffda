import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_TOKEN_PREFIX } from '../defaults.js';
import type { EventListener } from '../events.js';
import type { Scope, TokenInfo } from '../model.js';
import { revokeReported } from '../scanning/revocation-endpoint.js';
import { TokenMatcher } from '../scanning/token-matcher.js';
import { redactUrl } from '../stores/open-token-store.js';
import type { TokenQuery } from '../stores/token-store.js';
import { isTokenId, parseToken } from '../tokens/format.js';
import { parseRateLimitText } from '../tokens/restrictions.js';
import { type ChangeContext, TokenService } from '../tokens/service.js';
import {
  auditLog,
  cliActor,
  type Env,
  expiryFrom,
  hasherFrom,
  openStore,
  resolveEnv,
  storeUrl,
} from './environment.js';
import { CliError, EXIT } from './exit-codes.js';
import { parseExpiry } from './expires.js';
import { lineWriter, table, tokenDetails, tokenTable } from './output.js';
import { type StatCounts, tokenStats } from './stats.js';
import { type CliUpstream, cliUpstream } from './upstream.js';

/** Where a run reads its environment and writes its output (the process's, or a test's). */
export interface CliIo {
  env: Env;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Where `identify` and `revoke-leaked -` read tokens (never from arguments). Default: none. */
  stdin?: NodeJS.ReadableStream;
}

interface GlobalOptions {
  store?: string;
  auditLog?: string;
}

/** What a command works with: the token service over the opened store, and the output. */
interface Session {
  tokens: TokenService;
  change: ChangeContext;
  /** The audit log's listener (for events a command reports itself). */
  emit: EventListener;
  out: (text: string) => Promise<void>;
  note: (text: string) => void;
  /** The store URL, password hidden. */
  storeUrl: string;
}

const PAGE = 1_000;

/**
 * A token id from an argument: the id itself, or a whole token string (a leaked token found in
 * a log can be revoked as it is). Anything else is a usage error that never repeats the
 * argument, which might be a secret.
 */
function idOf(argument: string, prefix: string): string {
  if (isTokenId(argument)) return argument;
  const parsed = parseToken(argument, prefix);
  if (parsed !== null) return parsed.id;
  throw new CliError(
    EXIT.USAGE,
    `An argument is neither a token id (11 letters and digits) nor a ${prefix}_ token.`,
  );
}

/** Every token the query matches, page by page. */
async function* everyToken(tokens: TokenService, query: Omit<TokenQuery, 'start' | 'limit'>) {
  let start = 0;
  for (;;) {
    const page = await tokens.search({ ...query, start, limit: PAGE });
    yield* page.values;
    if (page.isLastPage || page.nextStart === undefined) return;
    start = page.nextStart;
  }
}

const EPILOG = `
Environment (secrets come from here or from NAME_FILE, never from arguments):
  TOKEN_STORE         store URL: redis://, rediss://, redis+sentinel://, redis+cluster://,
                      postgres://, sqlite:<file> (memory: for tests)
  TOKEN_PEPPER        the proxies' pepper (create, identify, revoke-leaked, seal); TOKEN_HASHER
                      sha256 (default) or bcrypt
  TOKEN_PREFIX        token prefix (default bbt); TOKEN_MAX_DAYS, TOKEN_DEFAULT_DAYS: expiry policy
  REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD, PGPASSWORD: store passwords
  TOKEN_AUDIT_LOG     file that receives every change as a JSON line (like --audit-log)
  ENCRYPTION_KEYS, BITBUCKET_URL, BITBUCKET_ADMIN_TOKEN: access-token mode, as the proxies have
                      them; revoke then deletes the Bitbucket access token behind each token
                      at once (without them the proxies delete it within a minute)

Exit codes: 0 done, 1 internal error, 2 usage error, 3 not found, 4 store unavailable,
5 configuration error, 6 refused by policy.`;

/**
 * The `express-api-tokens` command line: tokens on any store, changed through `TokenService`
 * so that every change is an audit event and reaches every proxy through the store's feed.
 */
export function createProgram(io: CliIo, version: string): Command {
  const program = new Command('express-api-tokens');
  program
    .description('Manage the API tokens of express-api-tokens proxies, on any token store.')
    .version(version)
    .option('--store <url>', 'token store URL without a password (default: $TOKEN_STORE)')
    .option(
      '--audit-log <file>',
      'append every change as a JSON line to this file (- for stderr; default: $TOKEN_AUDIT_LOG)',
    )
    .addHelpText('after', EPILOG)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });

  /** An action that opens the store, runs `work` with the command's options and arguments, and always closes what it opened. */
  const session =
    <O>(
      needs: { hasher?: boolean; upstream?: boolean; createStore?: boolean },
      work: (s: Session, options: O, args: string[]) => Promise<void>,
    ) =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const options = args[args.length - 2] as O;
      const positional = args.slice(0, -2).flat() as string[];
      const global = command.optsWithGlobals<GlobalOptions & { pepper?: boolean }>();
      const env = resolveEnv(io.env);
      const url = storeUrl(global.store, env);
      const hasher = hasherFrom(env, needs.hasher === true && global.pepper !== false);
      const log = auditLog(global.auditLog ?? env['TOKEN_AUDIT_LOG']);
      const note = (text: string) => void io.stderr.write(`${text}\n`);
      // What happened to Bitbucket access tokens is said on stderr too, not only in the log.
      const onEvent: EventListener = (event) => {
        log(event);
        if (event.type === 'upstream.deleted')
          note(`deleted Bitbucket access token ${event.upstreamTokenId} behind ${event.tokenId}`);
        else if (event.type === 'upstream.delete-failed')
          note(
            `Bitbucket access token behind ${event.tokenId} not deleted yet (${event.error}); the proxies retry`,
          );
      };
      const opened = await openStore(url, env, needs.createStore === true);
      let upstream: CliUpstream | undefined;
      try {
        if (needs.upstream === true) upstream = cliUpstream(env, opened.store, onEvent, note);
      } catch (err) {
        await opened.close();
        throw err;
      }
      const tokens = new TokenService({
        store: opened.store,
        hasher,
        tokenPrefix: env['TOKEN_PREFIX'] || DEFAULT_TOKEN_PREFIX,
        expiry: expiryFrom(env),
        cache: { maxEntries: 0 },
        onEvent,
        ...(upstream === undefined ? {} : { upstream: upstream.hook }),
      });
      try {
        await work(
          {
            tokens,
            change: { actor: cliActor(io.env), clientIp: null },
            emit: onEvent,
            out: lineWriter(io.stdout),
            note,
            storeUrl: redactUrl(url),
          },
          options,
          positional,
        );
      } finally {
        upstream?.close();
        await hasher.close?.();
        await opened.close();
      }
    };

  program
    .command('init')
    .description(
      'make a new, empty token store at the URL (the SQLite file, or the PostgreSQL tables); ' +
        'every other command refuses a store that does not exist',
    )
    .action(
      session({ createStore: true }, async (s) => {
        await s.tokens.search({ start: 0, limit: 1 }); // the store answers: it is there and usable
        await s.out(`token store ready at ${s.storeUrl}`);
      }),
    );

  program
    .command('create')
    .description('create a token and print it, once, alone on stdout (pipe it where it goes)')
    .requiredOption('--user <user>', 'owner of the token (a Bitbucket user name)')
    .requiredOption('--name <name>', 'what the token is for (1 to 100 characters)')
    .addOption(
      new Option('--scope <scope>', 'read or write').choices(['read', 'write']).makeOptionMandatory(),
    )
    .option(
      '--expires <when>',
      'lifetime in days (90d) or a date (2030-01-31 or an ISO time); default: TOKEN_DEFAULT_DAYS',
    )
    .option(
      '--no-pepper',
      'create although TOKEN_PEPPER is not set (only if your proxies run without a pepper)',
    )
    .option(
      '--rate-limit <requests/seconds>',
      "the token's own rate limit, e.g. 600/60; default: the proxy's",
    )
    .action(
      session<{ user: string; name: string; scope: Scope; expires?: string; rateLimit?: string }>(
        { hasher: true },
        async (s, options) => {
          const expiresAt = options.expires === undefined ? undefined : parseExpiry(options.expires);
          const { token, info } = await s.tokens.create(
            {
              user: options.user,
              name: options.name,
              scope: options.scope,
              ...(expiresAt === undefined ? {} : { expiresAt: new Date(expiresAt) }),
              ...(options.rateLimit === undefined
                ? {}
                : { rateLimit: parseRateLimitText(options.rateLimit) }),
            },
            s.change,
          );
          await s.out(token);
          s.note(
            `Created ${info.id} for ${info.user} (${info.scope}, expires ${info.expiresAt ?? 'never'}). ` +
              'The token above is shown once.',
          );
        },
      ),
    );

  program
    .command('list')
    .description("list live tokens: one user's (--user) or everyone's (--all)")
    .option('--user <user>', 'only this user’s tokens')
    .option('--all', 'every user’s tokens')
    .option('--json', 'one JSON object a line (for scripts) instead of a table')
    .action(
      session<{ user?: string; all?: boolean; json?: boolean }>({}, async (s, options) => {
        if ((options.user === undefined) === (options.all !== true))
          throw new CliError(EXIT.USAGE, 'list needs --user USER or --all (one of them).');
        const query = options.user === undefined ? {} : { user: options.user };
        if (options.json) {
          for await (const info of everyToken(s.tokens, query)) await s.out(JSON.stringify(info));
          return;
        }
        const all: TokenInfo[] = [];
        for await (const info of everyToken(s.tokens, query)) all.push(info);
        for (const line of tokenTable(all)) await s.out(line);
        s.note(`${all.length} token${all.length === 1 ? '' : 's'}`);
      }),
    );

  program
    .command('show')
    .description('show one token (never its secret)')
    .argument('<id>', 'token id (the 11 characters after the prefix), or the whole token')
    .option('--json', 'as one JSON object')
    .action(
      session<{ json?: boolean }>({}, async (s, options, [argument = '']) => {
        const id = idOf(argument, s.tokens.tokenPrefix);
        const info = await s.tokens.get(id);
        if (info === null) throw new CliError(EXIT.NOT_FOUND, `No live token ${id}.`);
        if (options.json) await s.out(JSON.stringify(info));
        else for (const line of tokenDetails(info)) await s.out(line);
      }),
    );

  program
    .command('rename')
    .description('rename a token')
    .argument('<id>', 'token id, or the whole token')
    .argument('<name>', 'the new name')
    .action(
      session({}, async (s, _options, [argument = '', name = '']) => {
        const id = idOf(argument, s.tokens.tokenPrefix);
        const info = await s.tokens.update(id, { name }, s.change);
        if (info === null) throw new CliError(EXIT.NOT_FOUND, `No live token ${id}.`);
        await s.out(`renamed ${info.id} to ${JSON.stringify(info.name)}`);
      }),
    );

  program
    .command('rate-limit')
    .description(
      "set a token's own rate limit (requests/seconds, e.g. 600/60), or `none` for the proxy's default",
    )
    .argument('<id>', 'token id, or the whole token')
    .argument('<limit>', 'requests/seconds, or none')
    .action(
      session({}, async (s, _options, [argument = '', limit = '']) => {
        const id = idOf(argument, s.tokens.tokenPrefix);
        const rateLimit = limit === 'none' ? null : parseRateLimitText(limit);
        const info = await s.tokens.update(id, { rateLimit }, s.change);
        if (info === null) throw new CliError(EXIT.NOT_FOUND, `No live token ${id}.`);
        await s.out(
          info.rateLimit === null
            ? `${info.id}: the proxy's default rate limit`
            : `${info.id}: at most ${info.rateLimit.requests} requests in ${info.rateLimit.windowSeconds} seconds`,
        );
      }),
    );

  program
    .command('revoke')
    .description('revoke tokens at once, on every proxy sharing the store')
    .argument('<id...>', 'token ids, or whole tokens (a leaked one as found)')
    .action(
      session({ upstream: true }, async (s, _options, args) => {
        const ids = args.map((argument) => idOf(argument, s.tokens.tokenPrefix));
        const missing: string[] = [];
        for (const id of ids) {
          if (await s.tokens.revoke(id, s.change)) await s.out(`revoked ${id}`);
          else missing.push(id);
        }
        if (missing.length > 0) throw new CliError(EXIT.NOT_FOUND, `No live token ${missing.join(', ')}.`);
      }),
    );

  program
    .command('revoke-user')
    .description('revoke every token of a user (offboarding); 0 tokens is not an error')
    .argument('<user>', 'the user whose tokens go')
    .action(
      session({ upstream: true }, async (s, _options, [user = '']) => {
        const count = await s.tokens.revokeAll({ user }, s.change);
        await s.out(`revoked ${count} token${count === 1 ? '' : 's'} of ${user}`);
      }),
    );

  program
    .command('stats')
    .description('counts by scope: live, restricted, no expiry, expiring soon, never used, idle')
    .addOption(
      new Option('--expiring-days <n>', 'what "expiring soon" means').default(30).argParser(positive),
    )
    .addOption(new Option('--idle-days <n>', 'what "idle" means').default(90).argParser(positive))
    .option('--json', 'as one JSON object')
    .action(
      session<{ expiringDays: number; idleDays: number; json?: boolean }>({}, async (s, options) => {
        const stats = await tokenStats(everyToken(s.tokens, {}), { ...options, now: Date.now() });
        if (options.json) {
          await s.out(JSON.stringify(stats));
          return;
        }
        const rows = (Object.keys(stats.total) as Array<keyof StatCounts>).map((key) => [
          labelOf(key, options),
          String(stats.byScope.read[key]),
          String(stats.byScope.write[key]),
          String(stats.total[key]),
        ]);
        for (const line of table(['', 'READ', 'WRITE', 'TOTAL'], rows)) await s.out(line);
        await s.out(`users with tokens: ${stats.users}`);
      }),
    );

  program
    .command('export')
    .description('every live token’s metadata as JSON lines, for audits (never a hash or a secret)')
    .action(
      session({}, async (s) => {
        for await (const info of everyToken(s.tokens, {})) await s.out(JSON.stringify(info));
      }),
    );

  program
    .command('seal')
    .description(
      'seal the records written before 0.3.0 (once, right after upgrading: until then they are refused)',
    )
    .option('--no-pepper', 'seal although TOKEN_PEPPER is not set (only if your proxies run without one)')
    .action(
      session({ hasher: true }, async (s) => {
        const { sealed, intact, broken } = await s.tokens.sealUnsealed();
        await s.out(`sealed ${sealed} token${sealed === 1 ? '' : 's'}; ${intact} already sealed`);
        if (broken > 0)
          s.note(
            `${broken} token${broken === 1 ? ' has a record' : 's have records'} changed outside express-api-tokens ` +
              '(seal broken): left refused. Revoke them, or check TOKEN_PEPPER is the proxies’ pepper.',
          );
      }),
    );

  program
    .command('identify')
    .description('whose a token is: read from stdin (never an argument), shown without its secret or hash')
    .option('--json', 'as one JSON object')
    .option('--no-pepper', 'without TOKEN_PEPPER (only if your proxies run without a pepper)')
    .action(
      session<{ json?: boolean }>({ hasher: true }, async (s, options) => {
        if ((io.stdin as { isTTY?: boolean } | undefined)?.isTTY)
          s.note('Paste the token, then press Ctrl-D.');
        const text = await readInput(io, '-');
        const found = tokensIn(text, s.tokens.tokenPrefix);
        if (found.length !== 1)
          throw new CliError(
            EXIT.USAGE,
            `identify reads one ${s.tokens.tokenPrefix}_ token from stdin; it found ${found.length} (checksums checked).`,
          );
        const identity = await s.tokens.identify(found[0]!);
        if (options.json) await s.out(JSON.stringify(identity));
        else {
          await s.out(`status:           ${identity.status}`);
          if (identity.info !== undefined) for (const line of tokenDetails(identity.info)) await s.out(line);
        }
        if (identity.status === 'unknown')
          throw new CliError(
            EXIT.NOT_FOUND,
            'Unknown token: never issued on this store, revoked, or a wrong secret.',
          );
      }),
    );

  program
    .command('revoke-leaked')
    .description(
      'revoke every live token found anywhere in a file (or - for stdin), with token.leaked events',
    )
    .argument('<file>', 'any text holding tokens (a log, a paste, a scanner report), or - for stdin')
    .option('--no-pepper', 'without TOKEN_PEPPER (only if your proxies run without a pepper)')
    .action(
      session({ hasher: true }, async (s, _options, [file = '-']) => {
        const found = tokensIn(await readInput(io, file), s.tokens.tokenPrefix);
        const revoked = await revokeReported(
          found.map((token) => ({ token, finder: 'cli' })),
          { tokens: s.tokens, emit: s.emit },
          { actor: s.change.actor ?? 'cli', clientIp: null },
        );
        for (const id of revoked) await s.out(`revoked ${id}`);
        s.note(
          `${found.length} well-formed token${found.length === 1 ? '' : 's'} found, ${revoked.length} live one${revoked.length === 1 ? '' : 's'} revoked`,
        );
      }),
    );

  for (const command of program.commands) {
    command.exitOverride().configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });
    command.showHelpAfterError('(run with --help for usage)');
  }
  return program;
}

/** A file's text, or stdin's for `-` (at most 64 MB: a log, a paste, a scanner's report). */
async function readInput(io: CliIo, file: string): Promise<string> {
  if (file !== '-') {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new CliError(
        EXIT.USAGE,
        `Cannot read ${file}: ${(err as { code?: string }).code ?? 'unreadable'}.`,
      );
    }
  }
  if (io.stdin === undefined) throw new CliError(EXIT.USAGE, 'No stdin to read tokens from.');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > 64 << 20) throw new CliError(EXIT.USAGE, 'stdin holds more than 64 MB.');
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Every distinct well-formed token (checksum checked) in a text, in order. */
function tokensIn(text: string, prefix: string): string[] {
  const found = new Set<string>();
  new TokenMatcher(prefix, (token) => found.add(token)).write(Buffer.from(text, 'latin1'));
  return [...found];
}

function positive(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError('Expected a whole number of days.');
  return Number(value);
}

function labelOf(key: string, options: { expiringDays: number; idleDays: number }): string {
  switch (key) {
    case 'live':
      return 'live tokens';
    case 'restricted':
      return 'restricted';
    case 'noExpiry':
      return 'no expiry';
    case 'expiringSoon':
      return `expiring within ${options.expiringDays} days`;
    case 'neverUsed':
      return 'never used';
    case 'idle':
      return `idle ${options.idleDays}+ days`;
    default:
      return key;
  }
}
