import type { TokenInfo } from '../../model.js';
import { IdentifyForm } from './identify-page.js';
import { Csrf, type Frame, renderPage } from './layout.js';
import { Alert } from './parts.js';
import { CreateForm, type CreateFormProps } from './token-form.js';
import { type Notice, TokenTable } from './token-pages.js';

export interface ManagerView {
  frame: Frame;
  /** The filters as entered (query parameters). */
  filters: Record<string, string>;
  tokens: readonly TokenInfo[];
  start: number;
  limit: number;
  nextStart: number | undefined;
  now: number;
  notice?: Notice;
  /** A filter that could not be read. */
  error?: string;
  create: Omit<CreateFormProps, 'frame' | 'onBehalf'> | undefined;
}

const FILTER_FIELDS = [
  'user',
  'name',
  'scope',
  'restricted',
  'createdAfter',
  'expiresBefore',
  'lastUsedBefore',
];

/** The query string of a page of results with the same filters. */
function pageQuery(filters: Record<string, string>, start: number, limit: number): string {
  const query = new URLSearchParams();
  for (const field of FILTER_FIELDS) if (filters[field]) query.set(field, filters[field]);
  if (start > 0) query.set('start', String(start));
  if (limit !== 25) query.set('limit', String(limit));
  const text = query.toString();
  return text === '' ? 'manage' : `manage?${text}`;
}

function Filter(props: { filters: Record<string, string>; name: string; label: string; date?: boolean }) {
  const attributes = {
    id: `q-${props.name}`,
    name: props.name,
    value: props.filters[props.name] ?? '',
    autocomplete: 'off',
  };
  return (
    <div class="field">
      <label for={`q-${props.name}`}>{props.label}</label>
      {props.date ? <input type="date" {...attributes} /> : <input type="text" {...attributes} />}
    </div>
  );
}

function Choice(props: {
  filters: Record<string, string>;
  name: string;
  label: string;
  options: [string, string][];
}) {
  const current = props.filters[props.name] ?? '';
  return (
    <div class="field">
      <label for={`q-${props.name}`}>{props.label}</label>
      <select id={`q-${props.name}`} name={props.name}>
        {props.options.map(([value, text]) => (
          <option value={value} selected={value === current}>
            {text}
          </option>
        ))}
      </select>
    </div>
  );
}

/** The token manager: everyone's tokens, filtered and paged; revoke; revoke all of a user; create on behalf. */
export function managerPage(view: ManagerView): string {
  const { frame, filters, tokens, start, limit, nextStart, now } = view; // `start` is the store's cursor: only forward and back to the first page
  const user = filters['user'] ?? '';
  return renderPage(
    frame,
    'Token manager',
    <>
      <h1>Token manager</h1>
      <p class="lead">Every user’s tokens. Revoke what should not work any more.</p>
      {view.notice !== undefined && <Alert tone={view.notice.tone}>{view.notice.text}</Alert>}
      <section class="card" aria-labelledby="filter-heading">
        <h2 id="filter-heading">Filter</h2>
        <form method="get" action={`${frame.root}manage`} class="stack" aria-labelledby="filter-heading">
          <div class="grid">
            <Filter filters={filters} name="user" label="User" />
            <Filter filters={filters} name="name" label="Name contains" />
            <Choice
              filters={filters}
              name="scope"
              label="Scope"
              options={[
                ['', 'Any'],
                ['read', 'Read'],
                ['write', 'Write'],
              ]}
            />
            <Choice
              filters={filters}
              name="restricted"
              label="Restrictions"
              options={[
                ['', 'Any'],
                ['true', 'Restricted'],
                ['false', 'Unrestricted'],
              ]}
            />
            <Filter filters={filters} name="createdAfter" label="Created after" date />
            <Filter filters={filters} name="expiresBefore" label="Expires before" date />
            <Filter filters={filters} name="lastUsedBefore" label="Last used before" date />
          </div>
          {view.error !== undefined && (
            <p class="error-text" role="alert">
              {view.error}
            </p>
          )}
          <div class="buttons">
            <button type="submit" class="primary">
              Filter
            </button>
            <a class="button" href={`${frame.root}manage`}>
              Clear filters
            </a>
          </div>
        </form>
      </section>
      <section class="card" aria-labelledby="results-heading">
        <h2 id="results-heading">Tokens</h2>
        {tokens.length === 0 ? (
          <p class="empty">No tokens match.</p>
        ) : (
          <TokenTable
            frame={frame}
            tokens={tokens}
            now={now}
            withOwner
            caption="Tokens matching the filters"
          />
        )}
        <nav class="pager" aria-label="Pages">
          <span>{tokens.length === 1 ? '1 token on this page' : `${tokens.length} tokens on this page`}</span>
          <span class="buttons">
            {start > 0 && (
              // `start` is the store's cursor: pages go forward, and back to the first.
              <a class="button small" href={`${frame.root}${pageQuery(filters, 0, limit)}`}>
                First page
              </a>
            )}
            {nextStart !== undefined && (
              <a class="button small" href={`${frame.root}${pageQuery(filters, nextStart, limit)}`}>
                Next page
              </a>
            )}
          </span>
        </nav>
        {user !== '' && tokens.length > 0 && (
          <form
            method="post"
            action={`${frame.root}manage/revoke-all`}
            data-confirm={`Revoke every token of ${user}? Everything using them stops working at once.`}
          >
            <Csrf frame={frame} />
            <input type="hidden" name="user" value={user} />
            <button type="submit" class="danger">
              Revoke all tokens of {user}
            </button>
          </form>
        )}
      </section>
      <section class="card" aria-labelledby="identify-heading">
        <h2 id="identify-heading">Identify a token</h2>
        <p>Whose is a token you were handed? It is looked up, not used, and never shown again.</p>
        <IdentifyForm frame={frame} />
      </section>
      {view.create !== undefined && (
        <section class="card" aria-labelledby="create-for-heading">
          <h2 id="create-for-heading">Create a token for a user</h2>
          <CreateForm frame={frame} onBehalf {...view.create} />
        </section>
      )}
    </>,
  );
}
