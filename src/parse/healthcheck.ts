// HEALTHCHECK: `NONE`, or flags and `CMD command`, with durations and retries parsed as Go's
// time.ParseDuration and strconv.ParseInt parse them (moby/buildkit parseHealthcheck).
import { parseGoDuration } from './duration.js';
import type { FlagSpec, FlagValues } from './flags.js';
import {
  base,
  commandForm,
  definedOnly,
  flagsOf,
  isEmptyCommand,
  requiresAtLeastOne,
  step,
  type Input,
  type Instruction,
} from './input.js';
import type { HealthcheckStep } from './plan.js';
import { ParseProblem } from './problem.js';

const HEALTHCHECK_FLAGS: FlagSpec = {
  interval: 'string',
  timeout: 'string',
  'start-period': 'string',
  'start-interval': 'string',
  retries: 'string',
};

/** `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD command`. Never substituted. */
export function parseHealthcheck(input: Input): Instruction {
  if (input.args === '') throw requiresAtLeastOne('HEALTHCHECK');
  const sep = /\s/.exec(input.args);
  const type = (sep === null ? input.args : input.args.slice(0, sep.index)).toUpperCase();
  const rest = sep === null ? '' : input.args.slice(sep.index).trimStart();

  if (type === 'NONE') {
    // Docker does not look at the flags of HEALTHCHECK NONE at all.
    if (rest !== '') throw new ParseProblem('HEALTHCHECK NONE takes no arguments');
    return step({ kind: 'HEALTHCHECK', ...base(input), test: ['NONE'] });
  }
  const flags = flagsOf(input, HEALTHCHECK_FLAGS);
  if (type !== 'CMD') throw new ParseProblem(`Unknown type ${JSON.stringify(type)} in HEALTHCHECK (try CMD)`);
  const cmd = commandForm(rest);
  if (isEmptyCommand(cmd)) throw new ParseProblem('Missing command after HEALTHCHECK CMD');

  const healthcheck: HealthcheckStep = {
    kind: 'HEALTHCHECK',
    ...base(input),
    test: cmd.form === 'exec' ? ['CMD', ...cmd.argv] : ['CMD-SHELL', cmd.command],
    ...definedOnly({
      intervalNs: interval(flags, 'interval'),
      timeoutNs: interval(flags, 'timeout'),
      startPeriodNs: interval(flags, 'start-period'),
      startIntervalNs: interval(flags, 'start-interval'),
      retries: retries(flags.get('retries')),
    }),
  };
  return step(healthcheck);
}

const MILLISECOND_NS = 1e6;

/** A duration flag in nanoseconds; empty or zero means unset (the image keeps no value). */
function interval(flags: FlagValues, name: string): number | undefined {
  const value = flags.get(name);
  if (value === undefined || value === '') return undefined;
  const ns = parseGoDuration(value);
  if (ns === 0) return undefined;
  if (ns < MILLISECOND_NS) throw new ParseProblem(`Interval ${JSON.stringify(name)} cannot be less than 1ms`);
  return ns;
}

const INT32_MAX = 2 ** 31 - 1;

/** Parsed like Go's strconv.ParseInt(value, 10, 32), with its error messages. */
function retries(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^[+-]?\d+$/.test(value)) {
    throw new ParseProblem(`strconv.ParseInt: parsing ${JSON.stringify(value)}: invalid syntax`);
  }
  const n = Number(value);
  if (n > INT32_MAX || n < -INT32_MAX - 1) {
    throw new ParseProblem(`strconv.ParseInt: parsing ${JSON.stringify(value)}: value out of range`);
  }
  if (n < 0) throw new ParseProblem(`--retries cannot be negative (${n})`);
  return n === 0 ? undefined : n;
}
