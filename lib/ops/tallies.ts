import type { AuditEvent, EventListener } from '../events.js';
import type { RateLimitObserver } from '../limits/rate-limit-step.js';
import type { Step } from '../request/step.js';

/**
 * Plain counters the request path and the event streams bump; the metrics read them when
 * Prometheus scrapes. A pass costs one property increment: no label objects, no hashing, no
 * prom-client call on the hot path.
 */
export class Tallies {
  /** Requests `protect()` let through, by what carried them. */
  readonly passed = { token: 0, password: 0, anonymous: 0 };
  /** Requests the request path refused, by code. */
  readonly refused = new Map<string, number>();
  /** Requests the management API (and token pages) refused, by code. */
  readonly managementRefused = new Map<string, number>();
  /** `token.*` events, by type. */
  readonly tokenEvents = new Map<string, number>();
  /** Requests refused by a rate limit, by which limit. */
  readonly rateLimited = { token: 0, user: 0 };
  /** Rate-limit reservations the store failed (the instance then counted on its own). */
  rateLimitStoreFailures = 0;
  /** The rate-limit step's observer. */
  readonly rateLimitObserver: RateLimitObserver = {
    refused: (limit) => {
      this.rateLimited[limit]++;
    },
    storeFailed: () => {
      this.rateLimitStoreFailures++;
    },
  };

  /** The last step of `protect()` when metrics are on: counts the pass by credential kind. */
  readonly countPassed: Step = (_req, _res, auth, next) => {
    const kind = auth.kind;
    if (kind === 'token') this.passed.token++;
    else if (kind === 'password') this.passed.password++;
    else this.passed.anonymous++;
    next();
  };

  /** The request path's listener: counts refusals, then hands every event on. */
  requestPathListener(next: EventListener | undefined): EventListener {
    return (event) => {
      if (event.type === 'auth.denied') add(this.refused, event.code);
      next?.(event);
    };
  }

  /** The management API's and the token service's listener: counts refusals and token events. */
  managementListener(next: EventListener): EventListener {
    return (event: AuditEvent) => {
      if (event.type === 'auth.denied') add(this.managementRefused, event.code);
      else if (event.type !== 'auth.succeeded') add(this.tokenEvents, event.type);
      next(event);
    };
  }
}

function add(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
