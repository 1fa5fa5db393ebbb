// Bounds for the property-based tests: each property stops after FUZZ_RUNS cases or
// FUZZ_MS milliseconds, whichever comes first, so CI time stays bounded. fast-check prints the
// seed and the counterexample's path on failure; FUZZ_SEED=<seed> replays a failing run.
import fc from 'fast-check';

const num = (name: string, fallback: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
};

export function fuzzParameters<T>(defaultRuns: number): fc.Parameters<T> {
  const seed = process.env.FUZZ_SEED;
  return {
    numRuns: num('FUZZ_RUNS', defaultRuns),
    interruptAfterTimeLimit: num('FUZZ_MS', 20_000),
    // Stopping on the time limit is a pass only if some cases ran: see markInterruptAsFailure.
    markInterruptAsFailure: false,
    ...(seed !== undefined && seed !== '' ? { seed: num('FUZZ_SEED', 0) } : {}),
  };
}
