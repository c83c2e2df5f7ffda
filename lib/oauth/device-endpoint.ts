import type { Request, Response } from 'express';
import { FixedWindowCounter } from '../internal/fixed-window-counter.js';
import { addressKey } from '../throttle/address-key.js';
import { authenticateClient } from './client-auth.js';
import { type DeviceRecord, digest, newSecret } from './grant-state.js';
import { oauthError } from './issuer.js';
import type { OAuthUrls } from './metadata.js';
import { parseScope } from './scope.js';
import { type EndpointContext, readForm, resultOfError, sendResult } from './token-endpoint.js';
import { formatUserCode, newUserCode } from './user-code.js';

/** The window of `maxDeviceAuthorizationsPerIp`. */
const WINDOW_MS = 60_000;

/** POST /device_authorization (RFC 8628 §3.1): a device code to poll with and a user code to type. */
export function deviceEndpoint(context: EndpointContext, urls: (req: Request) => OAuthUrls) {
  const { config, state } = context;
  const started = new FixedWindowCounter();
  return async function oauthDeviceAuthorization(req: Request, res: Response): Promise<void> {
    // The one write anyone may ask for: bounded per address, so no client fills the store.
    const { count, resetAt } = started.addBy(addressKey(context.clientIp(req)), 1, WINDOW_MS);
    if (count > config.maxDeviceAuthorizationsPerIp) {
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil((resetAt - Date.now()) / 1000))));
      sendResult(
        res,
        oauthError(429, 'temporarily_unavailable', 'Too many sign-ins started. Try again later.'),
      );
      return;
    }
    const form = readForm(req);
    if (typeof form === 'string') {
      sendResult(res, oauthError(400, 'invalid_request', 'Send one form, each parameter once.'));
      return;
    }
    const client = authenticateClient(req, form, config);
    if (!client.ok) {
      sendResult(res, oauthError(client.status, client.error, client.description));
      return;
    }
    const scope = parseScope(form.get('scope'));
    if (scope === undefined) {
      sendResult(res, oauthError(400, 'invalid_scope', 'Scopes are `read` and `write`.'));
      return;
    }
    try {
      const deviceCode = newSecret();
      const userCode = newUserCode();
      const now = Date.now();
      const record: DeviceRecord = {
        client: client.clientId,
        requested: scope,
        userCode,
        expiresAt: now + config.deviceCodeTtlMs,
        status: 'pending',
      };
      await state.put('device', digest(deviceCode), record, config.deviceCodeTtlMs);
      await state.put('user-code', userCode, { device: digest(deviceCode) }, config.deviceCodeTtlMs);
      const page = `${urls(req).pages}device`;
      sendResult(res, {
        status: 200,
        body: {
          device_code: deviceCode,
          user_code: formatUserCode(userCode),
          verification_uri: page,
          verification_uri_complete: `${page}?user_code=${formatUserCode(userCode)}`,
          expires_in: Math.floor(config.deviceCodeTtlMs / 1000),
          interval: config.devicePollIntervalS,
        },
      });
    } catch (err) {
      const result = resultOfError(err);
      if (result === undefined) throw err;
      sendResult(res, result);
    }
  };
}
