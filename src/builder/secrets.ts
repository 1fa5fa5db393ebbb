// Where the bytes of `RUN --mount=type=secret` come from: `--secret` flags name a file or an
// environment variable of the tsbuild process for each secret ID. The bytes are read when a step
// mounts the secret, each time anew, and handed to the caller only: nothing here writes them to
// disk, keeps them, or puts them in an error message (messages name the ID, the file or the
// variable, never the value).
//
// Follows docker buildx: the flag's syntax is buildx's (util/buildflags/secrets.go), and what an
// ID alone means, the up-front check and the size limit are BuildKit's session secret store
// (session/secrets/secretsprovider/store.go and secretsprovider.go). Stricter than BuildKit in
// two places, both to turn a silent surprise into an error: an `env=VAR` that is unset is an
// error (BuildKit reads it as an empty secret), and `src` with `env` is refused (BuildKit would
// quietly use the variable).
import { open, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidInputError, TsbuildError } from '../errors.js';
import type { SecretSource } from './request.js';
import { csvRecord } from '../parse/csv.js';

/** BuildKit's limit on one secret (secretsprovider.MaxSecretSize): 500 KiB. */
export const MAX_SECRET_SIZE = 500 * 1024;

const SECRET_SYNTAX = 'id=ID[,src=FILE|env=VAR][,type=file|env]';

/**
 * `--secret` as buildx reads it: comma-separated KEY=VALUE fields (CSV: a field may be quoted,
 * `"src=a,b"`), keys case-insensitive: `id`, `src` or `source`, `env`, `type=file|env`. With
 * `type=env`, `src` names the variable. With neither `src` nor `env` the source is decided by
 * `Secrets` (an environment variable named ID if set, else a file named ID), as buildx does.
 */
export function parseSecretFlag(value: string): SecretSource {
  const bad = (why: string) => new InvalidInputError(`invalid --secret ${JSON.stringify(value)}: ${why} (want ${SECRET_SYNTAX})`);
  let id: string | undefined;
  let src: string | undefined;
  let env: string | undefined;
  let type: 'file' | 'env' | undefined;
  for (const field of csvRecord(value, bad)) {
    const i = field.indexOf('=');
    if (i < 0) throw bad(`${JSON.stringify(field)} is not KEY=VALUE`);
    const key = field.slice(0, i).toLowerCase();
    const v = field.slice(i + 1);
    switch (key) {
      case 'id':
        id = v;
        break;
      case 'src':
      case 'source':
        src = v;
        break;
      case 'env':
        env = v;
        break;
      case 'type':
        if (v !== 'file' && v !== 'env') throw bad(`unsupported type ${JSON.stringify(v)}: use file or env`);
        type = v;
        break;
      default:
        throw bad(`unknown key ${JSON.stringify(key)}`);
    }
  }
  // buildx: with type=env and no env=, src names the variable.
  if (type === 'env' && env === undefined && src !== undefined) [env, src] = [src, undefined];
  if (!id) throw bad('id=ID is required');
  if (src === '') throw bad('src is empty');
  if (env === '') throw bad('env is empty');
  if (src !== undefined && env !== undefined) throw bad('give src=FILE or env=VAR, not both');
  if (type === 'file' && env !== undefined) throw bad('type=file reads src=FILE, not env');
  // An explicit type with an ID alone reads the variable or the file named ID (buildx documents
  // `id` as the default of both); only without a type does Secrets choose between the two.
  if (type === 'env' && env === undefined) env = id;
  if (type === 'file' && src === undefined) src = id;
  return { id, ...(src !== undefined ? { src } : {}), ...(env !== undefined ? { env } : {}) };
}

type Resolved =
  | { readonly id: string; readonly env: string }
  /** `implicit`: the flag gave an ID alone and no variable of that name was set. */
  | { readonly id: string; readonly file: string; readonly implicit: boolean };

export interface SecretsOptions {
  /** Where `env=` variables are read, at use time (default: process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** What relative `src=` paths are relative to (default: the current directory). */
  readonly cwd?: string;
}

/** The secrets a build may mount, by ID. */
export class Secrets {
  private readonly byId = new Map<string, Resolved>();
  private readonly env: NodeJS.ProcessEnv;

  constructor(sources: readonly SecretSource[], opts: SecretsOptions = {}) {
    this.env = opts.env ?? process.env;
    for (const s of sources) {
      // An ID alone: the variable named ID if it is set (even to ''), else the file named ID —
      // buildx's documented rule ("Buildx attempts to detect the type automatically if unset",
      // docs/reference/buildx_build.md, --secret), decided once, here, as BuildKit's NewStore
      // decides it when the build starts. A later flag with the same ID replaces an earlier
      // one (BuildKit keeps them in a map too).
      const env = s.env ?? (s.src === undefined && this.env[s.id] !== undefined ? s.id : undefined);
      this.byId.set(
        s.id,
        env !== undefined ? { id: s.id, env } : { id: s.id, file: resolve(opts.cwd ?? '.', s.src ?? s.id), implicit: s.src === undefined },
      );
    }
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /**
   * Fails, naming the ID, if a secret cannot be read now: a file that is missing, a directory or
   * over the limit, a variable unset or over the limit. BuildKit checks its files when the build
   * starts; a bad --secret should stop a build before its first step, not at the RUN that needs it.
   */
  async check(): Promise<void> {
    for (const r of this.byId.values()) {
      if ('env' in r) {
        this.envValue(r);
        continue;
      }
      const st = await stat(r.file).catch((err: NodeJS.ErrnoException) => {
        throw fileError(r, err);
      });
      if (st.isDirectory()) throw new InvalidInputError(`secret ${JSON.stringify(r.id)}: ${r.file} is a directory, not a file`);
      if (st.isFile() && st.size > MAX_SECRET_SIZE) throw tooBig(r.id);
    }
  }

  /**
   * The secret's bytes, read now from its file or variable; undefined for an ID no flag gave
   * (whether that is an error is the mount's `required` option, the caller's to decide).
   */
  async read(id: string): Promise<Buffer | undefined> {
    const r = this.byId.get(id);
    if (r === undefined) return undefined;
    return 'env' in r ? this.fromEnv(r) : readBounded(r);
  }

  private fromEnv(r: { id: string; env: string }): Buffer {
    return Buffer.from(this.envValue(r));
  }

  private envValue(r: { id: string; env: string }): string {
    const value = this.env[r.env];
    if (value === undefined) throw new InvalidInputError(`secret ${JSON.stringify(r.id)}: environment variable ${r.env} is not set`);
    if (Buffer.byteLength(value) > MAX_SECRET_SIZE) throw tooBig(r.id);
    return value;
  }
}

/**
 * Reads at most one byte more than the limit: the file may be a pipe or a device (`src=/dev/stdin`
 * works with BuildKit), whose size stat cannot tell, or may grow after check().
 */
async function readBounded(r: { id: string; file: string; implicit: boolean }): Promise<Buffer> {
  const fh = await open(r.file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw fileError(r, err);
  });
  try {
    const buf = Buffer.alloc(MAX_SECRET_SIZE + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, null).catch((err: NodeJS.ErrnoException) => {
        throw fileError(r, err);
      });
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > MAX_SECRET_SIZE) {
        buf.fill(0);
        throw tooBig(r.id);
      }
    }
    const bytes = Buffer.from(buf.subarray(0, n));
    buf.fill(0);
    return bytes;
  } finally {
    await fh.close();
  }
}

function fileError(r: { id: string; file: string; implicit: boolean }, err: NodeJS.ErrnoException): Error {
  const id = JSON.stringify(r.id);
  if (err.code === 'ENOENT' && r.implicit)
    return new InvalidInputError(`secret ${id}: no environment variable ${r.id} is set and there is no file ${r.file}`, { cause: err });
  const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'it is a directory' : (err.code ?? err.message);
  return new InvalidInputError(`secret ${id}: cannot read ${r.file}: ${why}`, { cause: err });
}

function tooBig(id: string): TsbuildError {
  return new InvalidInputError(`secret ${JSON.stringify(id)} is larger than ${MAX_SECRET_SIZE / 1024} KiB, BuildKit's limit for a secret`);
}
