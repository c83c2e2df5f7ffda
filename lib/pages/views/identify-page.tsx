import type { TokenIdentity } from '../../tokens/service.js';
import { Csrf, type Frame, renderPage } from './layout.js';
import { Alert, Expires, LastUsed, Restrictions, ScopeBadge, Time } from './parts.js';

const STATUS_TEXT: Record<TokenIdentity['status'], string> = {
  live: 'Live: this token works now.',
  expired: 'Expired: this token no longer works.',
  revoked: 'Revoked: this token no longer works.',
  unknown: 'Unknown: no token of this store has this secret. It was never issued here, or it was revoked.',
};

/** The form that asks for a token to identify (a password field: the browser neither shows nor keeps it). */
export function IdentifyForm({ frame }: { frame: Frame }) {
  return (
    <form
      method="post"
      action={`${frame.root}manage/identify`}
      class="stack"
      aria-labelledby="identify-heading"
    >
      <Csrf frame={frame} />
      <div class="field">
        <label for="identify-token">Token</label>
        <input
          id="identify-token"
          name="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          required
        />
      </div>
      <div class="buttons">
        <button type="submit">Identify</button>
      </div>
    </form>
  );
}

/** What a pasted token is: status, owner, scope, restrictions, created, last use. Never the token or its hash. */
export function identifyPage(
  frame: Frame,
  identity: TokenIdentity | undefined,
  now: number,
  error?: string,
): string {
  const info = identity?.info;
  return renderPage(
    frame,
    'Identify a token',
    <>
      <h1>Identify a token</h1>
      <p class="lead">Whose is a token you were handed? Paste it: it is looked up, not used.</p>
      {error !== undefined && <Alert tone="error">{error}</Alert>}
      {identity !== undefined && (
        <section class="card" aria-labelledby="identity-heading">
          <h2 id="identity-heading">Status: {identity.status}</h2>
          <Alert tone={identity.status === 'live' ? 'warning' : 'success'}>
            {STATUS_TEXT[identity.status]}
          </Alert>
          {info !== undefined && (
            <dl class="details">
              <dt>Id</dt>
              <dd>
                <code>{info.id}</code>
              </dd>
              <dt>Owner</dt>
              <dd>{info.user}</dd>
              <dt>Name</dt>
              <dd>{info.name}</dd>
              <dt>Scope</dt>
              <dd>
                <ScopeBadge scope={info.scope} />
              </dd>
              <dt>Restrictions</dt>
              <dd>
                <Restrictions info={info} />
              </dd>
              <dt>Created</dt>
              <dd>
                <Time iso={info.createdAt} /> by {info.createdBy}
              </dd>
              <dt>Expires</dt>
              <dd>
                <Expires info={info} now={now} />
              </dd>
              <dt>Last used</dt>
              <dd>
                <LastUsed info={info} />
              </dd>
            </dl>
          )}
        </section>
      )}
      <section class="card" aria-labelledby="identify-heading">
        <h2 id="identify-heading">{identity === undefined ? 'Token' : 'Another token'}</h2>
        <IdentifyForm frame={frame} />
      </section>
      <a class="button" href={`${frame.root}manage`}>
        Back to the token manager
      </a>
    </>,
  );
}
