import type { TokenInfo } from '../../model.js';
import { sameUser } from '../../validate.js';
import { Csrf, type Frame, renderPage } from './layout.js';
import {
  Alert,
  Expires,
  LastUsed,
  Origin,
  originText,
  Restrictions,
  ScopeBadge,
  Status,
  Time,
  type Tone,
} from './parts.js';
import { CreateForm, type CreateFormProps, RestrictionFields, type TokenFormState } from './token-form.js';

export interface Notice {
  tone: Tone;
  text: string;
}

const NoticeBox = ({ notice }: { notice: Notice | undefined }) =>
  notice === undefined ? null : <Alert tone={notice.tone}>{notice.text}</Alert>;

/** The revoke button of a row: asks first (a dialog with script, a confirmation page without). */
export function RevokeButton({
  frame,
  info,
  back,
}: {
  frame: Frame;
  info: TokenInfo;
  back: 'mine' | 'manage';
}) {
  return (
    <form
      method="post"
      action={`${frame.root}token/${info.id}/revoke`}
      data-confirm={`Revoke the token “${info.name}”? Anything using it stops working at once.`}
    >
      <Csrf frame={frame} />
      <input type="hidden" name="back" value={back} />
      <button type="submit" class="link-danger">
        Revoke<span class="visually-hidden"> token {info.name}</span>
      </button>
    </form>
  );
}

/** The table of tokens (own tokens; with the owner column in the token manager). */
export function TokenTable(props: {
  frame: Frame;
  tokens: readonly TokenInfo[];
  now: number;
  withOwner: boolean;
  caption: string;
}) {
  const { frame, tokens, now, withOwner } = props;
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">{props.caption}</caption>
        <thead>
          <tr>
            {withOwner && <th scope="col">User</th>}
            <th scope="col">Name</th>
            <th scope="col">Scope</th>
            <th scope="col">Restrictions</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Last used</th>
            <th scope="col">Status</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {tokens.map((info) => (
            <tr>
              {withOwner && <td>{info.user}</td>}
              <td>
                <a href={`${frame.root}token/${info.id}`}>{info.name}</a>
                <span class="sub mono">{info.id}</span>
                <Origin info={info} />
              </td>
              <td>
                <ScopeBadge scope={info.scope} />
              </td>
              <td>
                <Restrictions info={info} />
              </td>
              <td>
                <Time iso={info.createdAt} />
                {!sameUser(info.createdBy, info.user) && <span class="sub">by {info.createdBy}</span>}
              </td>
              <td>
                <Expires info={info} now={now} />
              </td>
              <td>
                <LastUsed info={info} />
              </td>
              <td>
                <Status info={info} now={now} />
              </td>
              <td class="actions">
                <RevokeButton frame={frame} info={info} back={withOwner ? 'manage' : 'mine'} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export interface MyTokensView {
  frame: Frame;
  tokens: readonly TokenInfo[];
  now: number;
  notice?: Notice;
  /** The create form, or undefined when the user may not create tokens. */
  create: Omit<CreateFormProps, 'frame' | 'onBehalf'> | undefined;
}

export function myTokensPage(view: MyTokensView): string {
  const { frame, tokens, now, create } = view;
  return renderPage(
    frame,
    'My tokens',
    <>
      <h1>My API tokens</h1>
      <p class="lead">Use a token instead of your password for git and the REST API. Keep each one secret.</p>
      <NoticeBox notice={view.notice} />
      <section class="card" aria-labelledby="create-heading">
        <h2 id="create-heading">Create a token</h2>
        {create === undefined ? (
          <p>You may not create API tokens. Ask an administrator if you need one.</p>
        ) : (
          <CreateForm frame={frame} onBehalf={false} {...create} />
        )}
      </section>
      <section class="card" aria-labelledby="list-heading">
        <h2 id="list-heading">Your tokens</h2>
        {tokens.length === 0 ? (
          <p class="empty">You have no tokens yet.</p>
        ) : (
          <TokenTable frame={frame} tokens={tokens} now={now} withOwner={false} caption="Your tokens" />
        )}
      </section>
    </>,
  );
}

export interface CreatedView {
  frame: Frame;
  token: string;
  info: TokenInfo;
  cloneLine: string;
  curlLine: string;
  /** Where "Done" leads. */
  back: 'mine' | 'manage';
  /** The rotated token's fate, for a rotation. */
  rotated?: string;
}

/** The one page that ever shows a token's secret. */
export function createdPage(view: CreatedView): string {
  const { frame, token, info, back } = view;
  return renderPage(
    frame,
    'Token created',
    <>
      <h1>Token created</h1>
      <Alert tone="warning">
        <strong>Copy the token now.</strong> It will not be shown again: only a hash of it is kept.
      </Alert>
      {view.rotated !== undefined && <Alert tone="success">{view.rotated}</Alert>}
      <section class="card" aria-labelledby="token-heading">
        <h2 id="token-heading">
          {info.name} <ScopeBadge scope={info.scope} />
        </h2>
        <p class="hint">
          For {info.user}.{' '}
          {info.expiresAt === null ? (
            'Never expires.'
          ) : (
            <>
              Expires <Time iso={info.expiresAt} />.
            </>
          )}
        </p>
        <div class="secret">
          <code id="new-token">{token}</code>
          <button
            type="button"
            class="primary"
            data-copy-target="new-token"
            data-copy-status="copy-status"
            hidden
          >
            Copy token
          </button>
        </div>
        <p id="copy-status" class="copied" role="status" aria-live="polite" />
        <h3>Clone with git</h3>
        <pre id="clone-line">{view.cloneLine}</pre>
        <button
          type="button"
          class="small"
          data-copy-target="clone-line"
          data-copy-status="copy-status"
          hidden
        >
          Copy git command
        </button>
        <h3>Call the REST API</h3>
        <pre id="curl-line">{view.curlLine}</pre>
        <button
          type="button"
          class="small"
          data-copy-target="curl-line"
          data-copy-status="copy-status"
          hidden
        >
          Copy curl command
        </button>
        <p class="hint">
          Or give the token as the password, with your user name ({info.user}), when git or another client
          asks.
        </p>
      </section>
      <a class="button" href={back === 'manage' ? `${frame.root}manage` : frame.root}>
        Done
      </a>
    </>,
  );
}

export interface TokenView {
  frame: Frame;
  info: TokenInfo;
  now: number;
  state: TokenFormState;
  notice?: Notice;
}

/** One token: its facts, rename and restrictions, rotate, revoke. */
export function tokenPage(view: TokenView): string {
  const { frame, info, now, state } = view;
  const nameError = state.error?.field === 'name' ? state.error.message : undefined;
  return renderPage(
    frame,
    info.name,
    <>
      <p>
        <a href={frame.root}>← My tokens</a>
        {frame.manager && (
          <>
            {' · '}
            <a href={`${frame.root}manage`}>Token manager</a>
          </>
        )}
      </p>
      <h1>{info.name}</h1>
      <NoticeBox notice={view.notice} />
      <section class="card" aria-labelledby="facts-heading">
        <h2 id="facts-heading">Details</h2>
        <dl class="facts">
          <dt>User</dt>
          <dd>{info.user}</dd>
          {info.origin !== null && (
            <>
              <dt>Issued</dt>
              <dd>{originText(info)}</dd>
            </>
          )}
          <dt>Id</dt>
          <dd class="mono">{info.id}</dd>
          <dt>Scope</dt>
          <dd>
            <ScopeBadge scope={info.scope} />
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
          <dt>Restrictions</dt>
          <dd>
            <Restrictions info={info} />
          </dd>
          <dt>Status</dt>
          <dd>
            <Status info={info} now={now} />
          </dd>
        </dl>
      </section>
      <section class="card" aria-labelledby="edit-heading">
        <h2 id="edit-heading">Change name and restrictions</h2>
        <form method="post" action={`${frame.root}token/${info.id}/update`} class="stack">
          <Csrf frame={frame} />
          <div class="field">
            <label for="f-name">Name</label>
            <input
              type="text"
              id="f-name"
              name="name"
              value={state.values['name'] ?? info.name}
              required
              maxLength={100}
              autocomplete="off"
              aria-invalid={nameError === undefined ? undefined : 'true'}
              aria-describedby={nameError === undefined ? undefined : 'f-name-error'}
            />
            {nameError !== undefined && (
              <p class="error-text" id="f-name-error">
                {nameError}
              </p>
            )}
          </div>
          <RestrictionFields state={state} />
          {state.error !== undefined &&
            !['name', 'allowedIps', 'requiredHeaders', 'resources', 'rateLimit'].includes(
              state.error.field,
            ) && (
              <p class="error-text" role="alert">
                {state.error.message}
              </p>
            )}
          <div class="buttons">
            <button type="submit" class="primary">
              Save changes
            </button>
          </div>
        </form>
      </section>
      <section class="card" aria-labelledby="rotate-heading">
        <h2 id="rotate-heading">Rotate</h2>
        <p class="hint">
          Makes a new token with the same name, scope and restrictions. The old one keeps working for the time
          you choose, so you can switch without downtime.
        </p>
        <form
          method="post"
          action={`${frame.root}token/${info.id}/rotate`}
          class="stack"
          data-confirm={`Rotate the token “${info.name}”?`}
        >
          <Csrf frame={frame} />
          <div class="field">
            <label for="graceMs">Old token stops working</label>
            <select id="graceMs" name="graceMs">
              <option value="0">At once</option>
              <option value="3600000">After 1 hour</option>
              <option value="86400000" selected>
                After 24 hours
              </option>
              <option value="604800000">After 7 days</option>
            </select>
          </div>
          <div class="buttons">
            <button type="submit">Rotate token</button>
          </div>
        </form>
      </section>
      <section class="card" aria-labelledby="revoke-heading">
        <h2 id="revoke-heading">Revoke</h2>
        <p class="hint">Anything using this token stops working at once. This cannot be undone.</p>
        <form
          method="post"
          action={`${frame.root}token/${info.id}/revoke`}
          data-confirm={`Revoke the token “${info.name}”? Anything using it stops working at once.`}
        >
          <Csrf frame={frame} />
          <button type="submit" class="danger">
            Revoke token
          </button>
        </form>
      </section>
    </>,
  );
}

export interface ConfirmView {
  frame: Frame;
  title: string;
  question: string;
  detail: string;
  action: string;
  fields: Record<string, string>;
  button: string;
  cancel: string;
}

/** The confirmation step of a revoke or rotation, for browsers without script. */
export function confirmPage(view: ConfirmView): string {
  const { frame } = view;
  return renderPage(
    frame,
    view.title,
    <section class="card narrow" aria-labelledby="confirm-heading">
      <h1 id="confirm-heading">{view.question}</h1>
      <p>{view.detail}</p>
      <form method="post" action={view.action} class="buttons">
        <Csrf frame={frame} />
        {Object.entries(view.fields).map(([name, value]) => (
          <input type="hidden" name={name} value={value} />
        ))}
        <input type="hidden" name="confirm" value="yes" />
        <button type="submit" class="danger">
          {view.button}
        </button>
        <a class="button" href={view.cancel}>
          Cancel
        </a>
      </form>
    </section>,
  );
}

/** Errors and other short messages (404, 403, 429, …). */
export function messagePage(frame: Frame, title: string, message: string, tone: Tone = 'error'): string {
  return renderPage(
    frame,
    title,
    <section class="card narrow" aria-labelledby="message-heading">
      <h1 id="message-heading">{title}</h1>
      <Alert tone={tone}>{message}</Alert>
      <a class="button" href={frame.root}>
        {frame.user === null ? 'Log in' : 'Back to my tokens'}
      </a>
    </section>,
  );
}
