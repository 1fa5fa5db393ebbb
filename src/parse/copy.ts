// COPY and ADD: sources (context paths, or heredocs as inline files), a destination, and the
// flags each accepts (moby/buildkit frontend/dockerfile/instructions/parse.go, parseCopy and
// parseAdd, with their checks and wording).
import { heredocContent, heredocMarkerOf } from './heredoc.js';
import { base, checked, definedOnly, expandWithoutVariables, flagsOf, step, type Input, type Instruction } from './input.js';
import type { FlagSpec } from './flags.js';
import type { CopyStep, Heredoc, Word } from './plan.js';
import { ParseProblem } from './problem.js';
import { checkHeredocBodySyntax } from './substitute.js';
import { parseJsonArray, splitOnWhitespace } from './words.js';

const COPY_FLAGS: FlagSpec = {
  chown: 'string',
  chmod: 'string',
  from: 'string',
  link: 'bool',
  parents: 'bool',
};

const ADD_FLAGS: FlagSpec = {
  chown: 'string',
  chmod: 'string',
  checksum: 'string',
  link: 'bool',
  'keep-git-dir': 'bool',
  unpack: 'unsupported',
};

export function parseCopy(input: Input): Instruction {
  const kind = input.keyword === 'ADD' ? 'ADD' : 'COPY';
  const json = parseJsonArray(input.args);
  const words = json.json ? json.values : splitOnWhitespace(input.args);
  if (words.length < 2) {
    throw new ParseProblem(`${kind} requires at least two arguments, but only one was provided. Destination could not be determined`);
  }
  // --exclude may repeat (BuildKit's BFlags AddStrings), so it is taken out before the others.
  const isExclude = (f: string): boolean => f === '--exclude' || f.startsWith('--exclude=');
  const exclude = input.flags.filter(isExclude).map((f) => {
    const eq = f.indexOf('=');
    if (eq < 0) throw new ParseProblem('missing a value on flag: --exclude');
    return f.slice(eq + 1);
  });
  const flags = flagsOf({ ...input, flags: input.flags.filter((f) => !isExclude(f)) }, kind === 'ADD' ? ADD_FLAGS : COPY_FLAGS);
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
      // Taken as written: BuildKit expands neither (CopyCommand.Expand covers --chown and --chmod only).
      exclude: exclude.length > 0 ? exclude : undefined,
      parents: flags.get('parents') === 'true' ? true : undefined,
      // Kept when false too: it must agree with a `?keep-git-dir=` in the URL (BuildKit).
      keepGitDir: flags.has('keep-git-dir') ? flags.get('keep-git-dir') === 'true' : undefined,
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
