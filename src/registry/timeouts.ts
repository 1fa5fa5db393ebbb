// The HTTP client a registry is reached with, and the limits that keep a slow or stalled
// registry from holding a command forever. Each has a variable; options given in code win.
//   TSBUILD_REGISTRY_TIMEOUT   seconds (decimals allowed): the connect and the idle timeout, and
//                              the window the minimum rate is averaged over (15 s, 60 s, 60 s):
//                              a slow link can wait longer, a test need not wait a minute.
//   TSBUILD_REGISTRY_MIN_RATE  bytes per second a connection must move, averaged over that
//                              window (1024; 0: no minimum). The idle timeout alone is reset
//                              by every byte, so a server sending one a second was never idle.
//   TSBUILD_REGISTRY_DEADLINE  seconds one request may take, its answer's body included,
//                              retries each starting anew. Unset: 600 s for manifests, tokens
//                              and the API's small requests, and none for blob transfers, whose
//                              time grows with their size (the minimum rate bounds them);
//                              set, it bounds blob transfers too.
import { TransportError } from '../http/errors.js';
import { Transport, type TransportOptions } from '../http/transport.js';

const DEFAULT_MIN_RATE = 1024;
const DEFAULT_DEADLINE_MS = 600_000;

export interface RegistryLimits {
  /** Every request's deadline unless the request sets its own; Infinity: none. */
  readonly deadlineMs?: number;
  /** A blob download's or upload's deadline; Infinity: none. */
  readonly blobDeadlineMs?: number;
}

export function registryTransport(opts: TransportOptions & RegistryLimits): Transport {
  const env = limitsFromEnv();
  return new Transport({
    minBytesPerSecond: DEFAULT_MIN_RATE,
    ...env,
    deadlineMs: opts.deadlineMs ?? env.deadlineMs ?? DEFAULT_DEADLINE_MS,
    ...withoutUndefined(opts),
  });
}

/** How long one blob transfer may take, all told: no limit unless given or set. */
export function blobDeadlineMs(opts: RegistryLimits): number {
  return opts.blobDeadlineMs ?? limitsFromEnv().deadlineMs ?? Infinity;
}

function limitsFromEnv(): Partial<TransportOptions> {
  const out: { -readonly [K in keyof TransportOptions]?: TransportOptions[K] } = {};
  const timeout = seconds('TSBUILD_REGISTRY_TIMEOUT');
  if (timeout !== undefined) out.connectTimeoutMs = out.idleTimeoutMs = timeout * 1000;
  const deadline = seconds('TSBUILD_REGISTRY_DEADLINE');
  if (deadline !== undefined) out.deadlineMs = deadline * 1000;
  const rate = process.env.TSBUILD_REGISTRY_MIN_RATE;
  if (rate !== undefined && rate !== '') {
    const n = Number(rate);
    if (!/^\d+$/.test(rate.trim()) || !Number.isSafeInteger(n))
      throw new TransportError(
        `TSBUILD_REGISTRY_MIN_RATE must be a whole number of bytes per second (0: no minimum), not ${JSON.stringify(rate)}`,
      );
    out.minBytesPerSecond = n;
  }
  return out;
}

function seconds(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new TransportError(`${name} must be a positive number of seconds, not ${JSON.stringify(v)}`);
  return n;
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
