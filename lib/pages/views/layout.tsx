import type { ComponentChildren } from 'preact';
import { renderToString } from 'preact-render-to-string';
import { ASSETS } from '../assets/assets.js';

/** What every page knows: who is logged in, where the pages' root is, the nonce and CSRF token. */
export interface Frame {
  /** Heading of the pages (`title` option). */
  appTitle: string;
  nonce: string;
  /** Relative path from this page to the pages' root (`./`, `../`, …): links work under any mount. */
  root: string;
  user: string | null;
  manager: boolean;
  /** CSRF token of the session, for every state-changing form. */
  csrf: string;
  /** Logout is ours to offer (not for apps that log people in themselves). */
  canLogOut: boolean;
  current?: 'mine' | 'manage';
}

const Logo = () => (
  <svg width="22" height="22" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
    <path
      fill="currentColor"
      d="M14.5 2a7.5 7.5 0 0 0-7.1 9.9L2 17.3V22h4.7v-2.3H9v-2.3h2.3l1.8-1.8A7.5 7.5 0 1 0 14.5 2Zm2 6.8a1.8 1.8 0 1 1 0-3.6 1.8 1.8 0 0 1 0 3.6Z"
    />
  </svg>
);

/** The hidden CSRF field of a state-changing form. */
export const Csrf = ({ frame }: { frame: Frame }) => <input type="hidden" name="_csrf" value={frame.csrf} />;

function Header({ frame }: { frame: Frame }) {
  const { root, user, manager, current } = frame;
  return (
    <header class="top">
      <a class="brand" href={root}>
        <Logo />
        {frame.appTitle}
      </a>
      {user !== null && (
        <nav aria-label="Main">
          <ul>
            <li>
              <a href={root} aria-current={current === 'mine' ? 'page' : undefined}>
                My tokens
              </a>
            </li>
            {manager && (
              <li>
                <a href={`${root}manage`} aria-current={current === 'manage' ? 'page' : undefined}>
                  Token manager
                </a>
              </li>
            )}
          </ul>
        </nav>
      )}
      {user !== null && (
        <div class="account">
          <span>
            <span class="visually-hidden">Logged in as </span>
            {user}
          </span>
          {frame.canLogOut && (
            <form method="post" action={`${root}logout`}>
              <Csrf frame={frame} />
              <button type="submit" class="small">
                Log out
              </button>
            </form>
          )}
        </div>
      )}
    </header>
  );
}

/** A whole page as HTML: doctype, head with our stylesheet and script (by nonce), header, main. */
export function renderPage(
  frame: Frame,
  title: string,
  body: ComponentChildren,
  head: { refreshTo?: string } = {},
): string {
  const { root, nonce } = frame;
  const html = renderToString(
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <meta name="robots" content="noindex" />
        {head.refreshTo !== undefined && <meta http-equiv="refresh" content={`0;url=${head.refreshTo}`} />}
        <title>{`${title} · ${frame.appTitle}`}</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={`${root}assets/${ASSETS.styles.file}`} nonce={nonce} />
        <script src={`${root}assets/${ASSETS.script.file}`} nonce={nonce} defer />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <Header frame={frame} />
        <main id="main">{body}</main>
      </body>
    </html>,
  );
  return `<!doctype html>\n${html}`;
}
