import type { LoginProvider } from '../options.js';
import { type Frame, renderPage } from './layout.js';
import { Alert } from './parts.js';

export interface LoginView {
  frame: Frame;
  login: LoginProvider;
  /** CSRF token of this login form. */
  formToken: string;
  username?: string;
  error?: string;
  /** A short confirmation (e.g. after logging out). */
  info?: string;
  /** The login was asked by git or another tool signing in (the consent or device page follows). */
  signIn?: boolean;
}

/** The login page: a user name and password form, or the single sign-on button. */
export function loginPage(view: LoginView): string {
  const { frame, login, error } = view;
  return renderPage(
    frame,
    'Log in',
    <div class="login">
      <h1>Log in</h1>
      <section class="card" aria-label="Log in">
        <p class="hint">
          {view.signIn
            ? 'Log in to let git or another tool sign in with an API token: you confirm it on the next page.'
            : 'Log in to create and manage your API tokens for git and the REST API.'}
        </p>
        {view.info !== undefined && <Alert tone="success">{view.info}</Alert>}
        {error !== undefined && <Alert tone="error">{error}</Alert>}
        {login.kind === 'password' ? (
          <form method="post" action={`${frame.root}login`} class="stack">
            <input type="hidden" name="_csrf" value={view.formToken} />
            <div class="field">
              <label for="username">{login.usernameLabel}</label>
              <input
                type="text"
                id="username"
                name="username"
                value={view.username ?? ''}
                required
                maxLength={255}
                autocomplete="username"
                autocapitalize="none"
                spellcheck={false}
              />
            </div>
            <div class="field">
              <label for="password">Password</label>
              <input
                type="password"
                id="password"
                name="password"
                required
                maxLength={1000}
                autocomplete="current-password"
              />
            </div>
            <div class="buttons">
              <button type="submit" class="primary">
                Log in
              </button>
            </div>
          </form>
        ) : (
          <a class="button primary" href={`${frame.root}login/sso`}>
            {login.buttonLabel}
          </a>
        )}
      </section>
    </div>,
  );
}

/** After single sign-on with `SameSite=Strict`: a same-site step, so the new cookie is sent. */
export function continuePage(frame: Frame): string {
  return renderPage(
    frame,
    'Logged in',
    <section class="card narrow" aria-labelledby="continue-heading">
      <h1 id="continue-heading">Logged in</h1>
      <p>You are logged in.</p>
      <a class="button primary" href={frame.root} id="continue">
        Continue to my tokens
      </a>
    </section>,
    { refreshTo: frame.root },
  );
}
