// `login`: checks credentials against the registry before keeping them, as `docker login`
// does, so a typo fails now rather than at the next push.
import { Authenticator } from './auth.js';
import type { Credentials } from './credentials.js';
import { endpointFor, type EndpointOptions } from './endpoint.js';
import { UnauthorizedError } from './errors.js';
import type { TransportOptions } from '../http/transport.js';
import { registryTransport } from './timeouts.js';

export interface LoginResult {
  /** The registry asks for no credentials at all (they are kept anyway, as Docker keeps them). */
  readonly anonymous: boolean;
}

export async function login(domain: string, credentials: Credentials, opts: EndpointOptions & TransportOptions = {}): Promise<LoginResult> {
  const endpoint = endpointFor(domain, opts);
  const transport = registryTransport(opts);
  try {
    const auth = new Authenticator(endpoint, transport, credentials);
    const scheme = await auth.ping();
    try {
      await auth.verify();
    } catch (err) {
      if (err instanceof UnauthorizedError) {
        // Docker's wording, whichever of /v2/ or the token server refused.
        const status = `${err.status} ${err.status === 403 ? 'Forbidden' : 'Unauthorized'}`;
        throw new UnauthorizedError(`login attempt to ${endpoint.base}/v2/ failed with status`, status, err.status, err.errors, {
          cause: err,
        });
      }
      throw err;
    }
    return { anonymous: scheme.kind === 'none' };
  } finally {
    transport.close();
  }
}
