// The HTTP client a registry is reached with. TSBUILD_REGISTRY_TIMEOUT (seconds, decimals
// allowed) replaces both its connect and its idle timeout: a slow link can wait longer, a test
// need not wait a minute for a stalled server. Options given in code win over the variable.
import { TransportError } from '../http/errors.js';
import { Transport, type TransportOptions } from '../http/transport.js';

export function registryTransport(opts: TransportOptions): Transport {
  return new Transport({ ...timeoutsFromEnv(), ...opts });
}

function timeoutsFromEnv(): Partial<TransportOptions> {
  const v = process.env.TSBUILD_REGISTRY_TIMEOUT;
  if (v === undefined || v === '') return {};
  const seconds = Number(v);
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new TransportError(`TSBUILD_REGISTRY_TIMEOUT must be a positive number of seconds, not ${JSON.stringify(v)}`);
  return { connectTimeoutMs: seconds * 1000, idleTimeoutMs: seconds * 1000 };
}
