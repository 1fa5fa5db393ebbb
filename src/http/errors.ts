// Failures of the HTTP client (src/http/transport.ts) as one line each. They say what happened
// to the request, not what it was for: callers that know (a registry pull, ADD of a URL) wrap
// or reword them.
import { TsbuildError } from '../errors.js';

/** A connection that could not be made or broke, after the retries. */
export class TransportError extends TsbuildError {}
