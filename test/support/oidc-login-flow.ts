/**
 * A single sign-on login driven over plain HTTP, as a browser would do it, against the token
 * pages and the test OpenID provider (test/support/oidc-provider.ts): the pages' redirect, the
 * provider's development login form, its redirect back, and the pages' callback. Each origin
 * keeps its own cookies, so the pages' login cookie travels exactly as a browser sends it.
 */
export interface SsoResult {
  /** The pages' answer to the callback. */
  status: number;
  body: string;
  /** Cookies the pages hold for this browser after the callback. */
  cookies: Map<string, string>;
}

class Browser {
  readonly jars = new Map<string, Map<string, string>>();

  jar(url: URL): Map<string, string> {
    const jar = this.jars.get(url.origin) ?? new Map<string, string>();
    this.jars.set(url.origin, jar);
    return jar;
  }

  async request(url: URL, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const jar = this.jar(url);
    const headers: Record<string, string> = {};
    if (jar.size > 0) headers['cookie'] = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    if (init.form !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(url, {
      method: init.method ?? 'GET',
      headers,
      redirect: 'manual',
      ...(init.form === undefined ? {} : { body: new URLSearchParams(init.form).toString() }),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line) || /max-age=0/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    return response;
  }
}

const locationOf = (response: Response, base: URL): URL => {
  const location = response.headers.get('location');
  if (location === null) throw new Error(`expected a redirect from ${base.href}, got ${response.status}`);
  return new URL(location, base);
};

/**
 * Logs `login` in through `pagesUrl` (e.g. `http://127.0.0.1:1234/sso/`), answering the
 * provider's form with any password, and returns the pages' answer to the callback.
 */
export async function ssoLogin(pagesUrl: string, login: string): Promise<SsoResult> {
  const browser = new Browser();
  const pages = new URL(pagesUrl);
  const start = await browser.request(new URL('login/sso', pages));
  if (start.status !== 303) throw new Error(`login/sso answered ${start.status}: ${await start.text()}`);
  let url = locationOf(start, pages);
  // The provider: authorization → its login form → resume → back to the pages.
  for (let step = 0; step < 10 && url.origin !== pages.origin; step++) {
    const response = await browser.request(url);
    if (response.status === 200) {
      const html = await response.text();
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
      if (action === undefined) throw new Error(`no form on the provider's page: ${html.slice(0, 200)}`);
      const submitted = await browser.request(new URL(action.replaceAll('&amp;', '&'), url), {
        method: 'POST',
        form: { prompt: 'login', login, password: 'any password' },
      });
      url = locationOf(submitted, url);
      continue;
    }
    url = locationOf(response, url);
  }
  const callback = await browser.request(url);
  return { status: callback.status, body: await callback.text(), cookies: browser.jar(pages) };
}

/** A callback request with no login cookie at all: what an `<img>` on another site sends. */
export async function bareCallback(pagesUrl: string, query = 'code=x&state=y'): Promise<number> {
  const response = await fetch(new URL(`login/callback?${query}`, pagesUrl), { redirect: 'manual' });
  await response.arrayBuffer();
  return response.status;
}
