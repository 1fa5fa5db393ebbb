// Failures of the HTTP client (src/http/transport.ts) as one line each. They say what happened
// to the request, not what it was for: callers that know (a registry pull, ADD of a URL) wrap
// or reword them, and can tell a timeout from a refused connection by class, not by wording.
import { TsbuildError } from '../errors.js';

/** A connection that could not be made or broke, after the retries. */
export class TransportError extends TsbuildError {}

/**
 * A request that got no answer, after the retries: `Get "http://h/v2/": connect ECONNREFUSED
 * 127.0.0.1:5000`, in the shape Go's net/http errors take. The cause is the network error or
 * TimeoutError, when there is one.
 */
export class RequestError extends TransportError {
  constructor(
    /** The method and the URL without its query: `Get "http://h/v2/"`. */
    readonly request: string,
    /** What went wrong, without the request: `connect ECONNREFUSED 127.0.0.1:5000`. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${request}: ${detail}`, options);
  }
}

/**
 * Which of the client's timeouts ran out: `connect` (TCP and TLS), `response` (from sending the
 * request to the final response's headers, redirects included) or `idle` (no byte moving).
 */
export type TimeoutPhase = 'connect' | 'response' | 'idle';

const TIMEOUT_WORDS: Readonly<Record<TimeoutPhase, (s: number) => string>> = {
  connect: (s) => `connect timeout after ${s}s`,
  response: (s) => `no response within ${s}s (response timeout)`,
  idle: (s) => `no data for ${s}s (idle timeout)`,
};

/**
 * A timeout, before the response (then the cause of a RequestError) or while its body is read
 * (then the error of the body stream). Not a TsbuildError: it is the cause, not the message a
 * user reads. `code` is what retry decisions look at, as they do for Node's network errors.
 */
export class TimeoutError extends Error {
  readonly code = 'ERR_TIMEOUT';
  constructor(
    readonly phase: TimeoutPhase,
    readonly ms: number,
  ) {
    super(TIMEOUT_WORDS[phase](ms / 1000));
    this.name = 'TimeoutError';
  }
}

/**
 * A request that moved too slowly to wait for: it ran past its deadline (`deadline`), or its
 * connection moved some bytes, but fewer than the minimum rate asks, in one rate window
 * (`rate`; a window with no byte at all is the idle timeout's). Unlike a TimeoutError it is not
 * retried: a server that trickles is slow, not flaky, and a retry would only spend the time
 * again. Like TimeoutError, the cause, not the message a user reads.
 */
export class TooSlowError extends Error {
  readonly code = 'ERR_TOO_SLOW';
  constructor(
    readonly phase: 'deadline' | 'rate',
    message: string,
  ) {
    super(message);
    this.name = 'TooSlowError';
  }
}

/** Whether `err`, or an error in its chain of causes, is a TooSlowError. */
export function isTooSlow(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof TooSlowError) return true;
  return false;
}
