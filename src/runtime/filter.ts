// A stream through a filter process, stdin to stdout: the native helper's gzip, the zstd tool.
//
// The output ends only once the process has exited 0; an input error fails the output with that
// error, at once (the process, its stdin closed, would otherwise end its output early and exit
// 0); a process that fails or cannot start fails it with the error `errors` words; destroying
// the output stops the input and the process at once. The process's stdin is the input's last
// holder: lent chunks (src/chunks.ts) go back as they are written to it. A process that also
// reports on fd 3 (the gzip helper's digest of its input) has the report checked before the
// output ends.
import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { writeGivingBack } from '../chunks.js';
import { collect, exited, type Exited } from './spawn.js';

export interface FilterErrors {
  /** It could not be started, or was killed by a signal. */
  notRunning(result: Exited, stderr: string): Error;
  /** It exited with a status other than 0 (the caller may look further to say why). */
  failed(exitCode: number, stderr: string): Error | Promise<Error>;
}

export interface FilterOptions {
  /**
   * The process also reports on fd 3 (a pipe). Once it has exited 0, `check` gets what it said
   * there, and the output ends only if that gives no error (it fails with it otherwise).
   */
  readonly check?: (report: string) => Promise<Error | undefined>;
}

export function filterThrough(
  input: Readable,
  file: string,
  args: readonly string[],
  errors: FilterErrors,
  opts: FilterOptions = {},
): Readable {
  const child = spawn(file, args, { stdio: opts.check ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'] });
  const done = exited(child);
  const stderr = collect(child.stderr);
  const report = opts.check ? collect(child.stdio[3] as Readable) : undefined;
  const output = new PassThrough({
    destroy(err, cb) {
      input.destroy();
      child.kill();
      cb(err);
    },
  });
  // A broken pipe to a process that died is not the story: its exit status and last line are.
  // Nor is the input's AbortError when the writer stops reading it because of that.
  child.stdin!.on('error', () => undefined);
  let inputError: Error | undefined;
  input.once('error', (err) => {
    if (child.stdin!.errored) return;
    inputError = err;
    output.destroy(err);
  });
  const fed = writeGivingBack(input, child.stdin!).catch(() => undefined);
  child.stdout!.pipe(output, { end: false });
  child.stdout!.once('end', () => {
    void Promise.all([done, fed]).then(async ([result]) => {
      if (output.destroyed) return;
      if (inputError) return output.destroy(inputError);
      const said = await stderr;
      let wrong: Error | undefined;
      try {
        if (result.exitCode === undefined) wrong = errors.notRunning(result, said);
        else if (result.exitCode !== 0) wrong = await errors.failed(result.exitCode, said);
        else if (opts.check) wrong = await opts.check(await report!);
      } catch (err) {
        wrong = err as Error;
      }
      if (output.destroyed) return;
      if (wrong) output.destroy(wrong);
      else output.end();
    });
  });
  // A process that cannot be started has no stdout to end.
  void done.then(async (result) => {
    if (result.code !== undefined && !output.destroyed) output.destroy(errors.notRunning(result, await stderr));
  });
  return output;
}
