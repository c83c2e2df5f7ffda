import type { RequestHandler } from 'express';
import { AuthenticationError } from '../errors.js';
import { type EventListener, safeEmitter } from '../events.js';
import { refuse } from '../http/respond.js';
import { func, string, validateOptions } from '../internal/options.js';
import { middlewareOf, type Step } from '../request/step.js';

/**
 * Options of `blockPasswordAuth`.
 * @example
 * const options: BlockPasswordAuthOptions = {
 *   message: 'Passwords are off: create a token at https://git.example.com/tokens/',
 * };
 * app.use(extractCredentials(), blockPasswordAuth(options));
 */
export interface BlockPasswordAuthOptions {
  /**
   * What the refused user is told. Default: to create an API token and use it in place of
   * the password. Name your token page here if you have one.
   */
  message?: string;
  /** Receives an `auth.denied` event for every refusal. Default: none. */
  onEvent?: EventListener;
}

export const DEFAULT_PASSWORD_MESSAGE =
  'Password authentication is disabled for the API. Create an API token and use it in place of your password.';

/**
 * Refuses Basic auth with a password (401) and tells the user to use an API token instead.
 * Token and anonymous requests pass.
 * @example app.use(extractCredentials(), blockPasswordAuth({ message: 'Create a token at https://git.example.com/tokens' }))
 */
export function blockPasswordAuth(options: Readonly<BlockPasswordAuthOptions> = {}): RequestHandler {
  return middlewareOf(blockPasswordAuthStep(options));
}

/** `blockPasswordAuth` as a step of `protect()`. */
export function blockPasswordAuthStep(options: Readonly<BlockPasswordAuthOptions>): Step {
  validateOptions<BlockPasswordAuthOptions>(options, { message: string(), onEvent: func });
  const message = options.message ?? DEFAULT_PASSWORD_MESSAGE;
  const emit = safeEmitter(options.onEvent);
  return function blockPasswordAuthStep(req, res, auth, next) {
    if (auth.kind !== 'password') {
      next();
      return;
    }
    refuse(req, res, new AuthenticationError('PASSWORD_AUTH_DISABLED', message), emit);
  };
}
