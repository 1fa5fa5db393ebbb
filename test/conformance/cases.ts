// The conformance corpus's cases (testdata/corpus): one directory each, with its Dockerfile, the
// files it needs and an optional case.json (CaseSpec). Read by the corpus test against Docker and
// by the rootless one against root.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../helpers/tsbuild.js';

export const CORPUS = join(REPO, 'testdata/corpus');

export const ALL_CASES = readdirSync(CORPUS)
  .filter((n) => statSync(join(CORPUS, n)).isDirectory())
  .sort();

export interface CaseSpec {
  readonly setup?: string;
  readonly buildArgs?: Record<string, string>;
  readonly target?: string;
  /** A Dockerfile in the case directory that Docker builds instead of `Dockerfile`. */
  readonly docker?: string;
  readonly dockerReason?: string;
  /** Both builders must refuse the build (exit non-zero); nothing is compared. */
  readonly fails?: boolean;
  /**
   * The case's context (after setup) is served over HTTP on 127.0.0.1, and the build gets
   * `--build-arg SERVED=<its URL>` for ADD of URLs.
   */
  readonly serve?: boolean;
  /** Which of Docker's builders builds the case: classic (the default) or buildkit. */
  readonly builder?: 'classic' | 'buildkit';
  /**
   * `--secret` for both builders, by id: a file of the case's context (after setup), given as
   * `src=`, or an environment variable of the build command with its value, given as `env=`.
   */
  readonly secrets?: Record<string, string | { readonly env: string; readonly value: string }>;
  /** `--ssh ID=KEYFILE` for both builders, each ID with one key the test generates. */
  readonly ssh?: readonly string[];
  /**
   * Directories Docker 20.10's BuildKit leaves where it made them to mount on (a RUN --mount
   * target the image lacked, and the parents it created): Docker's image may have them, empty;
   * tsbuild's must not, as current BuildKit removes them.
   */
  readonly mountStubs?: readonly string[];
}

export function spec(name: string): CaseSpec {
  let s: CaseSpec;
  try {
    s = JSON.parse(readFileSync(join(CORPUS, name, 'case.json'), 'utf8')) as CaseSpec;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  if (s.builder !== 'buildkit' && (s.secrets || s.ssh || s.mountStubs))
    throw new Error(`${name}/case.json: secrets, ssh and mountStubs need "builder": "buildkit"`);
  return s;
}
