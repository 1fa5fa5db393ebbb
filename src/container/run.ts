// `tsbuild run`: a throwaway container of a stored image. A writable snapshot on the image's
// top layer, an init layer between them, the helper runs the command, and the snapshot is
// removed afterwards whatever happened (runner.ts). The caller's mounts (run-options.ts) go
// over the snapshot after the init files; stdin and the pseudo-terminal are runtime/run.ts's.
import { randomBytes } from 'node:crypto';
import type { Digest } from '../digest.js';
import { TsbuildError } from '../errors.js';
import { DEFAULT_PATH, hostArchitecture } from '../image/config.js';
import { checkEmulation, knownArchitectures } from '../runtime/binfmt.js';
import type { Store } from '../store/store.js';
import { runInContainer, type TerminalIO } from '../runtime/helper.js';
import { mountOrder, type RunMount } from './run-options.js';
import { initLayerFor, inThrowaway } from './runner.js';
import { resolveUser } from './users.js';

export interface ContainerRequest {
  readonly image: Digest;
  /** Replaces the image's Cmd when non-empty. */
  readonly cmd?: readonly string[];
  /** Replaces the image's Entrypoint when given ('' clears it). */
  readonly entrypoint?: string;
  /** KEY=VALUE entries added to (and overriding) the image's Env. */
  readonly env?: readonly string[];
  readonly workdir?: string;
  readonly user?: string;
  readonly network?: 'host' | 'none';
  /** Default: 12 random hex digits, as Docker's container ID prefix. */
  readonly hostname?: string;
  /** Host paths and tmpfs mounts (-v, --mount, --tmpfs), applied parents first. */
  readonly mounts?: readonly RunMount[];
  readonly signal?: AbortSignal;
  /** The command's stdin (-i); omitted: /dev/null. */
  readonly stdin?: NodeJS.ReadableStream;
  /** A pseudo-terminal for the command (-t); its output all arrives on `stdout`. */
  readonly terminal?: TerminalIO;
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
}

function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out = new Map<string, string>();
  for (const kv of [...base, ...overrides]) {
    const i = kv.indexOf('=');
    out.set(i < 0 ? kv : kv.slice(0, i), kv);
  }
  if (![...out.keys()].includes('PATH')) out.set('PATH', `PATH=${DEFAULT_PATH}`);
  return [...out.values()];
}

export async function runContainer(store: Store, req: ContainerRequest): Promise<number> {
  const image = await store.image(req.image);
  const c = image.config.config;
  const entrypoint = req.entrypoint !== undefined ? (req.entrypoint === '' ? [] : [req.entrypoint]) : (c.Entrypoint ?? []);
  const cmd = req.cmd && req.cmd.length > 0 ? [...req.cmd] : req.entrypoint !== undefined ? [] : (c.Cmd ?? []);
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) throw new TsbuildError('no command specified: the image has no Cmd or Entrypoint');
  // Another architecture's image runs under QEMU: say how to register it rather than fail with ENOEXEC.
  if (knownArchitectures().includes(image.config.architecture)) {
    checkEmulation(image.config, { host: hostArchitecture(), doing: (p) => `running a ${p} image` });
  }
  const hostname = req.hostname ?? randomBytes(6).toString('hex');
  return inThrowaway(store, image.layers.at(-1)?.record, { init: await initLayerFor(hostname) }, async (mounted) => {
    const user = await resolveUser(mounted.rootfs, req.user ?? c.User ?? '');
    const { exitCode } = await runInContainer(
      {
        rootfs: mounted.rootfs,
        argv,
        env: mergeEnv(c.Env ?? [], req.env ?? []),
        cwd: req.workdir ?? (c.WorkingDir || '/'),
        uid: user.uid,
        gid: user.gid,
        groups: user.groups,
        hostname,
        network: req.network ?? 'host',
        binds: mounted.binds,
        mounts: mountOrder(req.mounts ?? []),
      },
      {
        ...(req.stdout ? { stdout: req.stdout } : {}),
        ...(req.stderr ? { stderr: req.stderr } : {}),
        ...(req.signal ? { signal: req.signal } : {}),
        ...(req.stdin ? { stdin: req.stdin } : {}),
        ...(req.terminal ? { terminal: req.terminal } : {}),
      },
    );
    return exitCode;
  });
}
