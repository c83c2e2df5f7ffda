import type { Request } from 'express';

/** What a grant handler answers; the token endpoint writes it as JSON with no-store. */
export type GrantResult =
  | { status: 200; body: Record<string, unknown> }
  | { status: 400 | 401 | 403 | 429 | 503; body: { error: string; error_description?: string } };

/** What the token endpoint hands a grant handler: the request, the client address and the parsed form. */
export interface GrantContext {
  req: Request;
  clientIp: string | null;
  form: URLSearchParams;
}

/** One `grant_type` of the token endpoint. */
export type GrantHandler = (context: GrantContext) => Promise<GrantResult>;
