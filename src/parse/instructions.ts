// One logical line → one typed instruction. Each parser follows the matching function of
// moby/buildkit frontend/dockerfile/instructions/parse.go: same argument rules, same checks,
// same error wording, so that a Dockerfile Docker rejects is rejected here with the same reason.
import { didYouMean } from '../suggest.js';
import { DockerfileError } from '../errors.js';
import { parseCopy } from './copy.js';
import { parseHealthcheck } from './healthcheck.js';
import {
  base,
  checked,
  commandForm,
  definedOnly,
  expandWithoutVariables,
  flagsOf,
  isEmptyCommand,
  NO_FLAGS,
  requiresAtLeastOne,
  requiresExactlyOne,
  step,
  type Input,
  type Instruction,
} from './input.js';
import type { LogicalLine } from './lines.js';
import type { ArgStep, FromClause, RunNetwork } from './plan.js';
import { parseMountAsWritten } from './mounts.js';
import { ParseProblem } from './problem.js';
import { referencedVariables } from './substitute.js';
import { extractFlags, parseJsonArray, parseNameValues, splitOnWhitespace, splitWordsKeepingQuotes } from './words.js';

export type { Instruction } from './input.js';

type InstructionParser = (input: Input) => Instruction;

/**
 * A word for an error message that fits on a terminal line: control characters escaped (a binary
 * file read as a Dockerfile must not drive the terminal) and at most 80 characters.
 */
function printable(word: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = word.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  const chars = Array.from(escaped);
  return chars.length > 80 ? `${chars.slice(0, 80).join('')}...` : escaped;
}

export function parseInstruction(line: LogicalLine, escapeChar: string): Instruction {
  const keyword = line.keyword.toUpperCase();
  const parse = Object.hasOwn(PARSERS, keyword) ? PARSERS[keyword] : undefined;
  if (parse === undefined)
    throw new DockerfileError(
      line.loc,
      `unknown instruction: ${printable(line.keyword)}${didYouMean(line.keyword, Object.keys(PARSERS), false)}`,
    );
  const text = line.rest === '' ? keyword : `${keyword} ${line.rest}`;
  // No process can be given a NUL in its arguments or environment: refused here, at its line,
  // rather than as an exec failure in the middle of a build. (A COPY heredoc is file content and
  // may hold one.)
  if (text.includes('\0') || (keyword === 'RUN' && line.heredocs?.some((h) => h.body.includes('\0')))) {
    throw new DockerfileError(line.loc, `${keyword} contains a NUL byte`);
  }
  try {
    const { flags, args } = extractFlags(line.rest, escapeChar);
    return parse({ line, keyword, text, flags, args, heredocs: line.heredocs ?? [], escapeChar });
  } catch (err) {
    if (err instanceof ParseProblem) throw new DockerfileError(line.loc, err.message, { cause: err });
    throw err;
  }
}

// Stage names are lower-cased, then must match this (Docker's validStageName).
const STAGE_NAME = /^[a-z][a-z0-9._-]*$/;

function parseFrom(input: Input): Instruction {
  const words = splitOnWhitespace(input.args);
  let name: string | undefined;
  if (words.length === 3 && words[1]?.toLowerCase() === 'as') {
    const written = words[2] as string;
    name = written.toLowerCase();
    if (!STAGE_NAME.test(name)) {
      throw new ParseProblem(`invalid name for build stage: ${JSON.stringify(written)}, name can't start with a number or contain symbols`);
    }
  } else if (words.length !== 1) {
    throw new ParseProblem('FROM requires either one or three arguments');
  }
  const platform = flagsOf(input, { platform: 'string' }).get('platform');
  const from: FromClause = {
    ...base(input),
    image: checked(words[0] as string, input),
    ...definedOnly({ platform: platform === undefined ? undefined : checked(platform, input) }),
  };
  return { kind: 'FROM', from, ...definedOnly({ name }) };
}

const NETWORK_MODES: ReadonlySet<string> = new Set<RunNetwork>(['default', 'none', 'host']);

function isRunNetwork(s: string): s is RunNetwork {
  return NETWORK_MODES.has(s);
}

function parseRun(input: Input): Instruction {
  // --mount is the one flag that may repeat (BuildKit's BFlags AddStrings).
  const isMount = (f: string): boolean => f.toLowerCase() === '--mount' || f.toLowerCase().startsWith('--mount=');
  const flags = flagsOf({ ...input, flags: input.flags.filter((f) => !isMount(f)) }, { network: 'string', security: 'string' });
  const mounts = input.flags.filter(isMount).map((f) => {
    const eq = f.indexOf('=');
    if (eq < 0 || eq === f.length - 1) throw new ParseProblem(`missing a value on flag: --mount`);
    const value = f.slice(eq + 1);
    // Checked now with the values that hold no variable; the builder reads it again, expanded.
    parseMountAsWritten(value, input.escapeChar);
    return value;
  });
  const given = flags.get('network');
  if (given !== undefined && !isRunNetwork(given)) throw new ParseProblem(`invalid network mode ${JSON.stringify(given)}`);
  const network = given;
  const security = flags.get('security');
  if (security !== undefined && security !== 'insecure' && security !== 'sandbox') {
    throw new ParseProblem(`security mode "${security}" is not supported; use insecure or sandbox`);
  }
  const cmd = commandForm(input.args);
  if (isEmptyCommand(cmd)) throw requiresAtLeastOne('RUN');
  // Only shell form can open heredocs; the line reader found them.
  const heredocs = cmd.form === 'shell' && input.heredocs.length > 0 ? input.heredocs : undefined;
  return step({
    kind: 'RUN',
    ...base(input),
    cmd,
    ...definedOnly({ network, heredocs, security, mounts: mounts.length > 0 ? mounts : undefined }),
  });
}

function parseCmdOrEntrypoint(input: Input): Instruction {
  flagsOf(input, NO_FLAGS);
  const kind = input.keyword === 'CMD' ? 'CMD' : 'ENTRYPOINT';
  return step({ kind, ...base(input), cmd: commandForm(input.args) });
}

function parseShell(input: Input): Instruction {
  flagsOf(input, NO_FLAGS);
  const json = parseJsonArray(input.args);
  if (input.args === '' || (json.json && json.values.length === 0)) throw requiresAtLeastOne('SHELL');
  if (!json.json) throw new ParseProblem('SHELL requires the arguments to be in JSON form');
  return step({ kind: 'SHELL', ...base(input), argv: json.values });
}

function parseEnv(input: Input): Instruction {
  const pairs = parseNameValues(input.args, 'ENV', input.escapeChar);
  flagsOf(input, NO_FLAGS);
  return step({
    kind: 'ENV',
    ...base(input),
    pairs: pairs.map(({ name, value }) => [envName(name, input), checked(value, input)] as const),
  });
}

/**
 * ENV names are plain strings in the plan, so their quotes and escapes are removed here.
 * Docker would also substitute variables in a name (`ENV ${X}=1`); nobody relies on that, and
 * resolving it here without the build's environment would be wrong, so it is refused.
 */
function envName(name: string, input: Input): string {
  let variables: string[];
  try {
    variables = referencedVariables(name, input.escapeChar);
  } catch (err) {
    throw new ParseProblem((err as Error).message, { cause: err });
  }
  if (variables.length > 0) {
    throw new ParseProblem(`variables in ENV names are not supported by tsbuild: ${name}`);
  }
  return expandWithoutVariables(name, input);
}

function parseLabel(input: Input): Instruction {
  const pairs = parseNameValues(input.args, 'LABEL', input.escapeChar);
  flagsOf(input, NO_FLAGS);
  return step({
    kind: 'LABEL',
    ...base(input),
    pairs: pairs.map(({ name, value }) => [checked(name, input), checked(value, input)] as const),
  });
}

/** `ARG A=1 B`: names are kept as written (Docker does not substitute them); defaults are words. */
function parseArg(input: Input): Instruction {
  flagsOf(input, NO_FLAGS);
  const words = splitWordsKeepingQuotes(input.args, input.escapeChar);
  if (words.length === 0) throw requiresAtLeastOne('ARG');
  const args: ArgStep['args'] = words.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) return { name: word };
    if (eq === 0) throw new ParseProblem('ARG names can not be blank');
    return { name: word.slice(0, eq), default: checked(word.slice(eq + 1), input) };
  });
  return step({ kind: 'ARG', ...base(input), args });
}

/** WORKDIR, USER, STOPSIGNAL take the whole rest of the line as one word, spaces included. */
function parseSingleWord(input: Input): Instruction {
  flagsOf(input, NO_FLAGS);
  if (input.args === '') throw requiresExactlyOne(input.keyword);
  const word = checked(input.args, input);
  switch (input.keyword) {
    case 'WORKDIR':
      return step({ kind: 'WORKDIR', ...base(input), path: word });
    case 'USER':
      return step({ kind: 'USER', ...base(input), user: word });
    default:
      return step({ kind: 'STOPSIGNAL', ...base(input), signal: word });
  }
}

function parseMaintainer(input: Input): Instruction {
  if (input.args === '') throw requiresExactlyOne('MAINTAINER');
  flagsOf(input, NO_FLAGS);
  return step({ kind: 'MAINTAINER', ...base(input), name: input.args });
}

function parseExpose(input: Input): Instruction {
  const ports = splitOnWhitespace(input.args);
  if (ports.length === 0) throw requiresAtLeastOne('EXPOSE');
  flagsOf(input, NO_FLAGS);
  return step({ kind: 'EXPOSE', ...base(input), ports: ports.map((port) => checked(port, input)) });
}

function parseVolume(input: Input): Instruction {
  const json = parseJsonArray(input.args);
  const paths = json.json ? json.values : splitOnWhitespace(input.args);
  if (paths.length === 0) throw requiresAtLeastOne('VOLUME');
  flagsOf(input, NO_FLAGS);
  return step({
    kind: 'VOLUME',
    ...base(input),
    paths: paths.map((path) => {
      const trimmed = path.trim();
      if (trimmed === '') throw new ParseProblem('VOLUME specified can not be an empty string');
      return checked(trimmed, input);
    }),
  });
}

/**
 * The trigger is stored as written and parsed when a child image builds FROM this one, as
 * Docker does; only the triggers Docker refuses outright are checked now.
 */
function parseOnbuild(input: Input): Instruction {
  if (input.args === '') throw requiresAtLeastOne('ONBUILD');
  flagsOf(input, NO_FLAGS);
  const trigger = (input.args.split(/\s/, 1)[0] as string).toUpperCase();
  if (trigger === 'ONBUILD') throw new ParseProblem("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (trigger === 'FROM' || trigger === 'MAINTAINER') {
    throw new ParseProblem(`${trigger} isn't allowed as an ONBUILD trigger`);
  }
  // The bodies go with the trigger, so that it parses the same in the child's build (BuildKit).
  const bodies = input.heredocs.map((heredoc) => `\n${heredoc.body}${heredoc.name}`).join('');
  return step({ kind: 'ONBUILD', ...base(input), trigger: input.args + bodies });
}

const PARSERS: Readonly<Record<string, InstructionParser>> = {
  ADD: parseCopy,
  ARG: parseArg,
  CMD: parseCmdOrEntrypoint,
  COPY: parseCopy,
  ENTRYPOINT: parseCmdOrEntrypoint,
  ENV: parseEnv,
  EXPOSE: parseExpose,
  FROM: parseFrom,
  HEALTHCHECK: parseHealthcheck,
  LABEL: parseLabel,
  MAINTAINER: parseMaintainer,
  ONBUILD: parseOnbuild,
  RUN: parseRun,
  SHELL: parseShell,
  STOPSIGNAL: parseSingleWord,
  USER: parseSingleWord,
  VOLUME: parseVolume,
  WORKDIR: parseSingleWord,
};
