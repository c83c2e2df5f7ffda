import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';

import { CHROMIUM_PATH } from './chromium-path.js';

export { CHROMIUM_PATH };

/** Where browser tests put their screenshots (gitignored). */
export const SHOTS_DIR = join(process.cwd(), 'test-output', 'pages');

/**
 * Headless Chromium for the browser tests. A missing Chromium fails the suite with a clear
 * message, never skips it: the pages must be tested in a real browser.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH))
    throw new Error(
      `Chromium is missing at ${CHROMIUM_PATH}: install the Debian package chromium (scripts/install-test-deps.sh) or set CHROMIUM_PATH.`,
    );
  mkdirSync(SHOTS_DIR, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown; html: string }>;
}

/** Runs axe-core in the page (through the DevTools protocol, which the page's CSP does not govern). */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: () => Promise<{ violations: AxeViolation[] }> } })
      .axe;
    const result = await axe.run();
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, html: n.html })),
    }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Bytes a page load transferred (document, stylesheet, script), as the browser counted them. */
export async function pageWeight(page: Page, load: () => Promise<unknown>): Promise<number> {
  const sizes: Array<Promise<number>> = [];
  const listener = (request: import('playwright-core').Request) => {
    sizes.push(
      request.sizes().then(
        (s) => s.responseHeadersSize + s.responseBodySize,
        () => 0,
      ),
    );
  };
  page.on('requestfinished', listener);
  await load();
  await page.waitForLoadState('load');
  page.off('requestfinished', listener);
  return (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
}
