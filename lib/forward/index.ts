/**
 * A streaming reverse proxy for the routes `gate.protect()` guards: `forwardTo(upstream)`.
 * @module
 */
export { type ForwardOptions, forwardTo } from './forward-to.js';
