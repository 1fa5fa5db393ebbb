// One logical line → one typed instruction. Each parser follows the matching function of
// moby/buildkit frontend/dockerfile/instructions/parse.go: same argument rules, same checks,
// same error wording, so that a Dockerfile Docker rejects is rejected here with the same reason.
import { DockerfileError } from '../errors.js';
import { parseGoDuration } from './duration.js';
import { parseFlags, type FlagSpec, type FlagValues } from './flags.js';
import { heredocContent, heredocMarkerOf } from './heredoc.js';
import type { LogicalLine } from './lines.js';
import type {
  ArgStep,
  CommandForm,
  CopyStep,
  FromClause,
  HealthcheckStep,
  Heredoc,
  RunNetwork,
  Step,
  Word,
} from './plan.js';
import { ParseProblem } from './problem.js';
import { checkHeredocBodySyntax, checkWordSyntax, expandWord, referencedVariables } from './substitute.js';
import {
  extractFlags,
  parseJsonArray,
  parseNameValues,
  splitOnWhitespace,
  splitWordsKeepingQuotes,
} from './words.js';

/** A FROM line opens a stage; every other instruction is a step of the current one. */
export type Instruction =
  | { readonly kind: 'FROM'; readonly from: FromClause; readonly name?: string }
  | { readonly kind: 'STEP'; readonly step: Step };

/** What every instruction parser receives. */
interface Input {
  readonly line: LogicalLine;
  /** Upper-cased keyword. */
  readonly keyword: string;
  /** `KEYWORD rest`, for history and messages. */
  readonly text: string;
  /** Raw `--flag[=value]` words; each parser checks them against what it accepts. */
  readonly flags: readonly string[];
  /** The arguments after the flags, trimmed. */
  readonly args: string;
  /** The heredocs the line opened, bodies read (RUN, COPY, ADD, ONBUILD only). */
  readonly heredocs: readonly Heredoc[];
  readonly escapeChar: string;
}

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
  if (parse === undefined) throw new DockerfileError(line.loc, `unknown instruction: ${printable(line.keyword)}`);
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

function step(step: Step): Instruction {
  return { kind: 'STEP', step };
}

function base(input: Input): { loc: LogicalLine['loc']; text: string } {
  return { loc: input.line.loc, text: input.text };
}

/** Optional plan members: absent when not given, rather than present and `undefined`. */
function definedOnly<T extends object>(values: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

/** Flags for instructions that take none: any flag is `unknown flag`. */
const NO_FLAGS: FlagSpec = {};

function flagsOf(input: Input, spec: FlagSpec): FlagValues {
  return parseFlags(input.keyword, input.flags, spec);
}

/** Reports substitution syntax errors now rather than halfway through the build. */
function checked(word: Word, input: Input): Word {
  try {
    checkWordSyntax(word, input.escapeChar);
  } catch (err) {
    throw new ParseProblem((err as Error).message, { cause: err });
  }
  return word;
}

/** A word's value when no variable is set: its quotes and escapes removed. */
function expandWithoutVariables(word: Word, input: Input): string {
  try {
    return expandWord(word, new Map(), input.escapeChar);
  } catch (err) {
    throw new ParseProblem((err as Error).message, { cause: err });
  }
}

/** JSON array → exec form; anything else (including broken JSON) → shell form, as Docker does. */
function commandForm(args: string): CommandForm {
  const json = parseJsonArray(args);
  return json.json ? { form: 'exec', argv: json.values } : { form: 'shell', command: args };
}

function isEmptyCommand(cmd: CommandForm): boolean {
  return cmd.form === 'exec' ? cmd.argv.length === 0 : cmd.command === '';
}

const requiresAtLeastOne = (keyword: string) => new ParseProblem(`${keyword} requires at least one argument`);
const requiresExactlyOne = (keyword: string) => new ParseProblem(`${keyword} requires exactly one argument`);

// Stage names are lower-cased, then must match this (Docker's validStageName).
const STAGE_NAME = /^[a-z][a-z0-9._-]*$/;

function parseFrom(input: Input): Instruction {
  const words = splitOnWhitespace(input.args);
  let name: string | undefined;
  if (words.length === 3 && words[1]?.toLowerCase() === 'as') {
    const written = words[2] as string;
    name = written.toLowerCase();
    if (!STAGE_NAME.test(name)) {
      throw new ParseProblem(
        `invalid name for build stage: ${JSON.stringify(written)}, name can't start with a number or contain symbols`,
      );
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
  const flags = flagsOf(input, { network: 'string', mount: 'unsupported', security: 'unsupported' });
  const given = flags.get('network');
  if (given !== undefined && !isRunNetwork(given)) throw new ParseProblem(`invalid network mode ${JSON.stringify(given)}`);
  const network = given;
  const cmd = commandForm(input.args);
  if (isEmptyCommand(cmd)) throw requiresAtLeastOne('RUN');
  // Only shell form can open heredocs; the line reader found them.
  const heredocs = cmd.form === 'shell' && input.heredocs.length > 0 ? input.heredocs : undefined;
  return step({ kind: 'RUN', ...base(input), cmd, ...definedOnly({ network, heredocs }) });
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

const COPY_FLAGS: FlagSpec = {
  chown: 'string',
  chmod: 'string',
  from: 'string',
  link: 'bool',
  exclude: 'unsupported',
  parents: 'unsupported',
};

const ADD_FLAGS: FlagSpec = {
  chown: 'string',
  chmod: 'string',
  checksum: 'string',
  link: 'bool',
  'keep-git-dir': 'bool',
  exclude: 'unsupported',
  unpack: 'unsupported',
};

function parseCopy(input: Input): Instruction {
  const kind = input.keyword === 'ADD' ? 'ADD' : 'COPY';
  const json = parseJsonArray(input.args);
  const words = json.json ? json.values : splitOnWhitespace(input.args);
  if (words.length < 2) {
    throw new ParseProblem(
      `${kind} requires at least two arguments, but only one was provided. Destination could not be determined`,
    );
  }
  const flags = flagsOf(input, kind === 'ADD' ? ADD_FLAGS : COPY_FLAGS);
  const dest = words[words.length - 1] as string;
  if (heredocMarkerOf(dest) !== undefined) {
    throw new ParseProblem(`${kind} cannot accept a heredoc as a destination`);
  }
  const { sources, heredocs } = copySources(words.slice(0, -1), input);

  const from = flags.get('from');
  // BuildKit resolves --from before any variable is known, and refuses to guess.
  if (from !== undefined && expandWithoutVariables(from, input) !== from) {
    throw new ParseProblem(
      'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
    );
  }
  const optional = (name: string): Word | undefined => {
    const value = flags.get(name);
    return value === undefined ? undefined : checked(value, input);
  };
  const copy: CopyStep = {
    kind,
    ...base(input),
    sources,
    dest: checked(dest, input),
    ...definedOnly({
      heredocs: heredocs.length > 0 ? heredocs : undefined,
      chown: optional('chown'),
      chmod: optional('chmod'),
      from,
      checksum: optional('checksum'),
      link: flags.get('link') === 'true' ? true : undefined,
      keepGitDir: flags.get('keep-git-dir') === 'true' ? true : undefined,
    }),
  };
  return step(copy);
}

/**
 * BuildKit's parseSourcesAndDest: a source word that is a heredoc operator (`<<EOF`, even in
 * JSON form) is an inline file with that heredoc's body, matched by name (the last body of
 * that name, or empty when the line opened none); every other word is a context path.
 */
function copySources(words: readonly string[], input: Input): { sources: Word[]; heredocs: Heredoc[] } {
  const bodies = new Map(input.heredocs.map((heredoc) => [heredoc.name, heredoc.body]));
  const sources: Word[] = [];
  const heredocs: Heredoc[] = [];
  for (const word of words) {
    const marker = heredocMarkerOf(word);
    if (marker === undefined) {
      sources.push(checked(word, input));
      continue;
    }
    const heredoc: Heredoc = { ...marker, body: bodies.get(marker.name) ?? '' };
    // The builder expands it; its syntax is checked now, like every word's.
    if (heredoc.expand) checkedHeredoc(heredoc);
    heredocs.push(heredoc);
  }
  return { sources, heredocs };
}

function checkedHeredoc(heredoc: Heredoc): void {
  try {
    checkHeredocBodySyntax(heredocContent(heredoc));
  } catch (err) {
    throw new ParseProblem((err as Error).message, { cause: err });
  }
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

const HEALTHCHECK_FLAGS: FlagSpec = {
  interval: 'string',
  timeout: 'string',
  'start-period': 'string',
  'start-interval': 'string',
  retries: 'string',
};

/** `HEALTHCHECK NONE` or `HEALTHCHECK [flags] CMD command`. Never substituted. */
function parseHealthcheck(input: Input): Instruction {
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

/**
 * The trigger is stored as written and parsed when a child image builds FROM this one, as
 * Docker does; only the triggers Docker refuses outright are checked now.
 */
function parseOnbuild(input: Input): Instruction {
  if (input.args === '') throw requiresAtLeastOne('ONBUILD');
  flagsOf(input, NO_FLAGS);
  const trigger = (input.args.split(/\s/, 1)[0] as string).toUpperCase();
  if (trigger === 'ONBUILD') throw new ParseProblem('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
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
