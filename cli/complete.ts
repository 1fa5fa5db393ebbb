// What a shell should offer for the word under the cursor of a tsbuild command line: the
// completion scripts (completion/ at the package's top) hand the words to `tsbuild __complete` and show
// what it prints, so bash, zsh and fish share one reading of the line, as cobra's
// `__complete` does for docker. Flags come from the spec each command parses with (specOf);
// image names from the store the line names (--root, else TSBUILD_ROOT); stage names from the
// Dockerfile of `build -f`, else ./Dockerfile.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { globalOptions, specOf, storeOptions, type CommandSpec } from './common.js';
import { COMMANDS, IMAGE_COMMANDS } from './registry.js';

/** `files` and `dirs` ask the shell for its own path completion; `words` are the candidates. */
export interface Completion {
  readonly kind: 'words' | 'files' | 'dirs';
  /** Each candidate, with a description the shell may show beside it. */
  readonly words: readonly { readonly value: string; readonly description?: string }[];
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };
type Spec = CommandSpec<Record<string, OptionSpec>>;

const DRIVERS = ['overlay2', 'vfs', 'fuse-overlayfs'];
/** Commands whose positional arguments are images, and which positions (undefined: all). */
const IMAGE_ARGS: Readonly<Record<string, number | undefined>> = {
  analyze: 0,
  diff: undefined,
  history: 0,
  images: 0,
  inspect: undefined,
  pull: 0,
  push: 0,
  rmi: undefined,
  run: 0,
  save: undefined,
  tag: undefined,
};
const FIXED_ARGS: Readonly<Record<string, readonly string[]>> = {
  bootstrap: ['busybox'],
  completion: ['bash', 'zsh', 'fish'],
};
const FILTERS = ['dangling=true', 'dangling=false', 'reference=', 'before=', 'since=', 'label='];

const words = (values: readonly string[], description?: (v: string) => string | undefined): Completion => ({
  kind: 'words',
  words: values.map((value) => ({ value, ...(description?.(value) ? { description: description(value)! } : {}) })),
});

/** The candidates for the last of `line` (the words after `tsbuild`, the last one the cursor's, maybe empty). */
export async function complete(line: readonly string[]): Promise<Completion> {
  const cur = line.at(-1) ?? '';
  const before = line.slice(0, -1);
  const globals: Record<string, string> = {};
  let i = 0;
  // Global options before the command.
  while (i < before.length && /^--(root|storage-driver)(=|$)/.test(before[i]!)) {
    const [flag, inline] = splitFlag(before[i]!);
    if (inline === undefined && i + 1 >= before.length) return valueOf(flag, {}, globals);
    globals[flag.slice(2)] = inline ?? before[++i]!;
    i++;
  }
  if (i >= before.length) {
    if (cur.startsWith('-')) return flagWords({ ...globalOptions, version: { type: 'boolean', short: 'v' } }, undefined);
    return words(
      Object.keys(COMMANDS).filter((c) => !COMMANDS[c]!.hidden),
      (c) => COMMANDS[c]!.summary,
    );
  }
  let name = before[i]!;
  if (name.startsWith('-')) name = 'build';
  else i++;
  if (name === 'image') {
    if (i >= before.length) return words(Object.keys(IMAGE_COMMANDS), (c) => COMMANDS[IMAGE_COMMANDS[c]!]!.summary);
    name = IMAGE_COMMANDS[before[i++]!] ?? '';
  }
  const command = COMMANDS[name];
  if (!command || command.hidden) return words([]);
  const spec = (await specOf((await command.load()).run)) as Spec | undefined;
  const options: Record<string, OptionSpec> = { ...(spec?.options ?? {}), ...(globalOptions as Record<string, OptionSpec>) };
  // The command's words: which flag wants a value, how many positionals came.
  const values: Record<string, string> = { ...globals };
  let positionals = 0;
  let onlyPositionals = false;
  for (; i < before.length; i++) {
    const w = before[i]!;
    if (onlyPositionals || !w.startsWith('-') || w === '-') {
      positionals++;
      continue;
    }
    if (w === '--') {
      onlyPositionals = true;
      continue;
    }
    const [flag, inline] = splitFlag(w);
    const option = optionNamed(options, flag);
    if (option?.[1].type !== 'string' || inline !== undefined) {
      if (option && inline !== undefined) values[option[0]] = inline;
      continue;
    }
    if (i + 1 >= before.length) return valueOf(option[0], options, values, name);
    values[option[0]] = before[++i]!;
  }
  // `run IMAGE CMD...`, `unshare CMD...`: what follows is the command's, flags too.
  if ((name === 'run' || name === 'unshare') && positionals > 0) return { kind: 'files', words: [] };
  if (cur.startsWith('-') && !onlyPositionals) return flagWords(options, spec);
  if (name in IMAGE_ARGS && (IMAGE_ARGS[name] === undefined || IMAGE_ARGS[name] === positionals)) return imageNames(values);
  const fixed = FIXED_ARGS[name];
  if (fixed) return positionals === 0 ? words(fixed) : words([]);
  if (name === 'build') return { kind: 'dirs', words: [] };
  return { kind: 'files', words: [] };
}

/** `--name=value` → [`--name`, `value`]; `-t` → [`-t`, undefined]. */
function splitFlag(w: string): [string, string | undefined] {
  const eq = w.indexOf('=');
  return eq > 0 && w.startsWith('--') ? [w.slice(0, eq), w.slice(eq + 1)] : [w, undefined];
}

function optionNamed(options: Record<string, OptionSpec>, flag: string): [string, OptionSpec] | undefined {
  if (flag.startsWith('--')) return options[flag.slice(2)] ? [flag.slice(2), options[flag.slice(2)]!] : undefined;
  return Object.entries(options).find(([, o]) => o.short !== undefined && flag === `-${o.short}`);
}

/** Candidates for the value of option `name` of `command`. */
async function valueOf(
  name: string,
  options: Record<string, OptionSpec>,
  values: Record<string, string>,
  command?: string,
): Promise<Completion> {
  const option = name.replace(/^--/, '');
  if (option === 'storage-driver') return words(DRIVERS);
  if (option === 'root') return { kind: 'dirs', words: [] };
  if (command === 'build' && option === 'target') return words(await stages(values.file));
  if (command === 'images' && option === 'filter') return words(FILTERS);
  if (options[option]?.type === 'string' && ['tag', 'target'].includes(option)) return words([]);
  return { kind: 'files', words: [] };
}

/** Each long option (with its help line's words as description), and -h's and the globals'. */
function flagWords(options: Record<string, OptionSpec>, spec: Spec | undefined): Completion {
  const help = spec?.optionHelp ?? [];
  return words(
    Object.keys(options).map((o) => `--${o}`),
    (flag) =>
      help
        .find((l) => new RegExp(`(^|\\s)${flag}(\\s|,|=|$)`).test(l))
        ?.replace(/^\s*(-\w,\s*)?--\S+(\s\S+)?\s{2,}/, '')
        .trim(),
  );
}

/** `name:tag` of every tagged image in the store the line names; none when there is no store to read. */
async function imageNames(values: Record<string, string>): Promise<Completion> {
  const { Store } = await import('../src/store/store.js');
  let store;
  try {
    store = await Store.open(await storeOptions(values));
  } catch {
    // A completion has nowhere to report an error: no store (or none readable) offers no names.
    return words([]);
  }
  const names = new Set<string>();
  for (const img of await store.images()) for (const t of img.tags) if (!t.digest) names.add(t.ref);
  return words([...names].sort());
}

/** The stage names of a Dockerfile (`FROM image AS name`), in order. */
async function stages(file: string | undefined): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file ?? join(process.cwd(), 'Dockerfile'), 'utf8');
  } catch {
    return []; // no Dockerfile there (yet): nothing to offer
  }
  return [...text.matchAll(/^\s*FROM\s+(?:--\S+\s+)*\S+\s+AS\s+(\S+)/gim)].map((m) => m[1]!);
}
