import { Csrf, type Frame, renderPage } from '../pages/views/layout.js';
import { Alert, FieldError } from '../pages/views/parts.js';

/** One lifetime a person may pick for the tokens of a sign-in. */
export interface LifetimeChoice {
  ms: number;
  label: string;
}

/** What the consent page shows and posts back. */
export interface ConsentView {
  frame: Frame;
  /** Where the form posts (relative to the page). */
  action: string;
  clientName: string;
  clientId: string;
  /** Where the answer goes (`127.0.0.1:53682`), or null for the device flow. */
  redirectHost: string | null;
  user: string;
  /** The person may choose write. */
  mayWrite: boolean;
  /** The scope asked for: null when the client did not say. */
  requested: 'read' | 'write' | null;
  lifetimes: readonly LifetimeChoice[];
  /** The request's parameters, posted back as they came. */
  hidden: Record<string, string>;
  values?: { grantScope?: string; lifetime?: string; resources?: string };
  error?: { field: string; message: string };
}

/** The consent page: which client, which user, the scope, an optional repository restriction, the lifetime. */
export function consentPage(view: ConsentView): string {
  const { frame, values = {}, error } = view;
  const scope = values.grantScope ?? (view.requested === 'write' && view.mayWrite ? 'write' : 'read');
  const lifetime = values.lifetime ?? String(view.lifetimes.at(-1)?.ms ?? '');
  const resourcesError = error?.field === 'resources' ? error.message : undefined;
  return renderPage(
    frame,
    'Sign in',
    <section class="card narrow" aria-labelledby="consent-heading">
      <h1 id="consent-heading">Sign in to {view.clientName}?</h1>
      <p>
        <strong>{view.clientName}</strong> (client <code>{view.clientId}</code>)
        {view.redirectHost === null ? ' on another device' : ' on this computer'} asks for an API token of{' '}
        <strong>{view.user}</strong>.
      </p>
      <p class="hint">
        {view.redirectHost === null
          ? 'Allow only if you started this yourself, just now, and the code matches the one your device shows.'
          : `Allow only if you just ran git or another tool yourself. The token goes to ${view.redirectHost}.`}
      </p>
      {error !== undefined && error.field !== 'resources' && <Alert tone="error">{error.message}</Alert>}
      <form method="post" action={view.action} class="stack">
        <Csrf frame={frame} />
        {Object.entries(view.hidden).map(([name, value]) => (
          <input type="hidden" name={name} value={value} />
        ))}
        <fieldset>
          <legend>Scope</legend>
          <div class="choices">
            <label class="choice">
              <input type="radio" name="grantScope" value="read" checked={scope === 'read'} />
              <span>Read — clone, fetch, read the REST API</span>
            </label>
            {view.mayWrite && view.requested !== 'read' && (
              <label class="choice">
                <input type="radio" name="grantScope" value="write" checked={scope === 'write'} />
                <span>Write — also push</span>
              </label>
            )}
          </div>
        </fieldset>
        <div class="field">
          <label for="resources">Repositories (optional)</label>
          <p class="hint" id="resources-hint">
            Limit the token to these projects or repositories, one per line: <code>PROJ</code>,{' '}
            <code>PROJ/repo</code>, <code>~user/repo</code>. Empty: every repository you may use.
          </p>
          <textarea
            id="resources"
            name="resources"
            rows={2}
            aria-describedby={
              resourcesError === undefined ? 'resources-hint' : 'resources-hint resources-error'
            }
            aria-invalid={resourcesError === undefined ? undefined : 'true'}
          >
            {values.resources ?? ''}
          </textarea>
          <FieldError id="resources-error" message={resourcesError} />
        </div>
        <div class="field">
          <label for="lifetime">Each token works for</label>
          <select id="lifetime" name="lifetime">
            {view.lifetimes.map((choice) => (
              <option value={String(choice.ms)} selected={String(choice.ms) === lifetime}>
                {choice.label}
              </option>
            ))}
          </select>
        </div>
        <div class="buttons">
          <button type="submit" class="primary" name="decision" value="allow">
            Allow
          </button>
          <button type="submit" name="decision" value="deny">
            Deny
          </button>
        </div>
      </form>
    </section>,
  );
}

/** The device flow's first step: type the code the device shows. */
export function deviceEntryPage(frame: Frame, userCode: string, error?: string): string {
  return renderPage(
    frame,
    'Connect a device',
    <section class="card narrow" aria-labelledby="device-heading">
      <h1 id="device-heading">Connect a device</h1>
      <p>Type the code that git or another tool shows on the device you are signing in.</p>
      {error !== undefined && <Alert tone="error">{error}</Alert>}
      <form method="post" action={`${frame.root}device`} class="stack">
        <Csrf frame={frame} />
        <div class="field">
          <label for="user_code">Code</label>
          <input
            type="text"
            id="user_code"
            name="user_code"
            value={userCode}
            required
            maxLength={20}
            autocomplete="off"
            autocapitalize="characters"
            spellcheck={false}
          />
        </div>
        <div class="buttons">
          <button type="submit" class="primary">
            Continue
          </button>
        </div>
      </form>
    </section>,
  );
}

/** The end of a browser step: what happened, and that the person may close the tab. */
export function outcomePage(
  frame: Frame,
  title: string,
  message: string,
  tone: 'success' | 'warning',
): string {
  return renderPage(
    frame,
    title,
    <section class="card narrow" aria-labelledby="outcome-heading">
      <h1 id="outcome-heading">{title}</h1>
      <Alert tone={tone}>{message}</Alert>
      <a class="button" href={frame.root}>
        My tokens
      </a>
    </section>,
  );
}
