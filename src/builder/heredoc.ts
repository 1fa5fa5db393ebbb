// What a step with heredocs executes or copies, as BuildKit's Dockerfile frontend builds it
// (moby/buildkit frontend/dockerfile/dockerfile2llb: dispatchRun, dispatchCopy).
//
// RUN (shell form only; the body is never expanded here, whatever the delimiter's quotes: the
// shell sees it and expands or not, as for any heredoc):
//   - the command is exactly one heredoc operator (`RUN <<EOF`, `RUN <<-'EOF'`, `RUN 3<<EOF`):
//       body (tabs stripped for `<<-`) starting with `#!`: it is written as a file named after
//         the delimiter, mode 0755, in a directory mounted read-only at /dev/pipes, and the
//         shell runs that path: [...SHELL, '/dev/pipes/EOF'], so the kernel honours the shebang;
//       otherwise the body *is* the script: [...SHELL, body]. With SHELL ["/bin/awk"] the body
//         is an awk program: "heredocs" for interpreters that have none;
//   - anything else (`RUN python3 <<EOF`, `RUN <<A <<B cmd`, `RUN cat <<EOF > f`): the
//     instruction line is given back its bodies, each followed by its delimiter line, and the
//     whole text goes to the shell, which feeds the heredocs to the command's stdin or fds:
//     [...SHELL, 'python3 <<EOF\nprint(1)\nEOF']. Nothing is mounted, no stdin is wired.
// COPY/ADD: each heredoc source is a file named after its delimiter, mode 0644 (then --chmod,
// --chown as for any source), body tabs-stripped for `<<-` and then, when the delimiter was
// unquoted, expanded with the step's variables (quotes are plain text there). Its mtime is when
// it was written (BuildKit makes it in a file operation of the build, without a timestamp).
// Each is copied by itself after the context sources, like a one-file context, never as a
// wildcard, never unpacked by ADD.
import { createHash } from 'node:crypto';
import { chmod, mkdir, realpath, utimes, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { BuildContext, parseIgnoreRules } from '../context/index.js';
import { InvalidInputError } from '../errors.js';
import { expandHeredocBody, heredocContent, heredocMarkerOf, type Env, type Heredoc } from '../parse/index.js';

/** Where BuildKit mounts the script of a one-heredoc RUN that starts with `#!`. */
export const PIPES_DIR = '/dev/pipes';

/** A file made from a heredoc. */
export interface InlineFile {
  /** One path component: the delimiter (cleaned as a path, as BuildKit's Mkfile does). */
  readonly name: string;
  readonly content: Buffer;
  /** Permission bits, exactly (not masked by the umask). */
  readonly mode: number;
}

export interface HeredocRunInput {
  /** The stage's SHELL (or the default ['/bin/sh', '-c']). */
  readonly shell: readonly string[];
  /** RunStep.cmd.command: the instruction's line after its flags (`<<EOF`, `python3 <<EOF`). */
  readonly command: string;
  /** RunStep.heredocs. */
  readonly heredocs: readonly Heredoc[];
}

export interface HeredocRun {
  /** What the helper runs: SHELL and one script argument. Also what history records, joined by spaces. */
  readonly argv: readonly string[];
  /**
   * Files to put in an otherwise empty directory (0755) bind-mounted read-only at PIPES_DIR for
   * this step only; absent when nothing is mounted. Their content is not in `argv`, so it must
   * be part of the step's cache key (`inlineFilesKey`).
   */
  readonly pipes?: readonly InlineFile[];
  /**
   * For one-heredoc RUNs, what BuildKit appends to the step's name in progress output:
   * `RUN <<EOF` shows as `RUN <<EOF (apt-get update...)`.
   */
  readonly summary?: string;
}

const SCRIPT_MODE = 0o755;
const FILE_MODE = 0o644;
const DIR_MODE = 0o755;

/** BuildKit's dispatchRun for a shell-form RUN; without heredocs, plain [...shell, command]. */
export function heredocRun(input: HeredocRunInput): HeredocRun {
  const { shell, command, heredocs } = input;
  const [first] = heredocs;
  if (first === undefined) return { argv: [...shell, command] };

  if (heredocMarkerOf(command) === undefined) {
    const script = command + heredocs.map((heredoc) => `\n${heredoc.body}${heredoc.name}`).join('');
    return { argv: [...shell, script] };
  }
  const body = heredocContent(first);
  const summary = summarize(first.body);
  if (!body.startsWith('#!')) return { argv: [...shell, body], summary };
  const name = inlineFileName(first.name);
  return {
    argv: [...shell, posix.join(PIPES_DIR, name)],
    pipes: [{ name, content: Buffer.from(body), mode: SCRIPT_MODE }],
    summary,
  };
}

/**
 * The files a COPY/ADD makes of its heredocs, in order: body tabs-stripped for `<<-`, then
 * expanded with `env` (the step's ARGs and ENV, as for its other words) unless the delimiter
 * was quoted. Throws a plain Error for a failed expansion (`${V:?}`), like expandWord.
 */
export function copyHeredocFiles(heredocs: readonly Heredoc[], env: Env): InlineFile[] {
  return heredocs.map((heredoc) => {
    const content = heredocContent(heredoc);
    return {
      name: inlineFileName(heredoc.name),
      content: Buffer.from(heredoc.expand ? expandHeredocBody(content, env) : content),
      mode: FILE_MODE,
    };
  });
}

/** A stable digest of files' names, modes and contents, for cache keys. */
export function inlineFilesKey(files: readonly InlineFile[]): string {
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(`${file.name.length}:${file.name} ${file.mode.toString(8)} ${file.content.length}:`);
    hash.update(file.content);
  }
  return hash.digest('hex');
}

export interface WriteOptions {
  /** atime and mtime of the files. Default: now, as BuildKit's file operation leaves them. */
  readonly mtime?: Date;
}

/**
 * Writes RUN's `pipes` into `dir` (an existing, empty directory the caller owns and removes),
 * which becomes 0755 like BuildKit's mount, so that a step running as another USER can read
 * and execute the script.
 */
export async function writePipes(dir: string, files: readonly InlineFile[], opts: WriteOptions = {}): Promise<void> {
  await chmod(dir, DIR_MODE);
  for (const file of files) await writeInlineFile(join(dir, file.name), file, opts);
}

/** The context and source paths `copyIntoRootfs` takes for the files of `copyHeredocFiles`. */
export interface HeredocSources {
  readonly context: BuildContext;
  /** One per file, in order: copy each with its own `copyIntoRootfs` call. */
  readonly sources: readonly string[];
}

/**
 * Writes COPY/ADD heredoc files under `dir` (an existing, empty directory the caller owns and
 * removes), each in its own subdirectory so that two heredocs of the same name stay two files,
 * as they are two sources in BuildKit. The context has no .dockerignore (a heredoc may well be
 * named `.dockerignore`), and each source path matches its file literally, wildcard characters
 * in the name included.
 */
export async function writeCopyHeredocs(dir: string, files: readonly InlineFile[], opts: WriteOptions = {}): Promise<HeredocSources> {
  const sources: string[] = [];
  for (const [i, file] of files.entries()) {
    const sub = join(dir, String(i));
    await mkdir(sub, { mode: DIR_MODE });
    await writeInlineFile(join(sub, file.name), file, opts);
    sources.push(`${i}/${literalSource(file.name)}`);
  }
  return { context: new BuildContext(await realpath(dir), parseIgnoreRules('', undefined)), sources };
}

async function writeInlineFile(path: string, file: InlineFile, opts: WriteOptions): Promise<void> {
  // 'wx': the directory is ours and fresh; an existing file would be a caller's mistake.
  await writeFile(path, file.content, { flag: 'wx', mode: file.mode });
  await chmod(path, file.mode);
  const mtime = opts.mtime ?? new Date();
  await utimes(path, mtime, mtime);
}

/**
 * The file a heredoc becomes: BuildKit creates its delimiter as a path below an empty root
 * (`a/../b` is `b`), which fails unless that is one component.
 */
function inlineFileName(delimiter: string): string {
  const name = posix.normalize(`/${delimiter}`).slice(1);
  if (name === '' || name.includes('/') || name.includes('\0')) {
    throw new InvalidInputError(
      `heredoc ${JSON.stringify(delimiter)} cannot be made into a file: its name must be a file name, not a path`,
    );
  }
  return name;
}

/**
 * A source that BuildContext.resolveSource matches to exactly this name. Its plain-path lookup
 * takes `\*` literally (backslash included), so a name holding `*`, `?`, `[` or `\` is written
 * as a pattern whose every such character is a one-character class: `[\*].txt`.
 */
function literalSource(name: string): string {
  return name.replace(/[\\*?[]/g, '[\\$&]');
}

/** BuildKit's summarizeHeredoc: the first non-blank line, `...` when there is more. */
function summarize(body: string): string {
  const lines = body.trim().replace(/\r\n/g, '\n').split('\n');
  return lines.length > 1 ? `${lines[0]}...` : (lines[0] as string);
}
