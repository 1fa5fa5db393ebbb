// What a build is asked to do and what it reports, as the CLI and library callers see it.
import type { CacheFrom, CacheTo } from '../cache/spec.js';
import type { Digest } from '../digest.js';
import type { SourceLocation } from '../errors.js';
import type { ImageConfig } from '../image/config.js';
import type { Platform } from '../image/platform.js';
import type { BuildPlan } from '../parse/plan.js';
import type { PullOptions, PushResult } from '../registry/index.js';

/** What the builder reports while it works; the CLI renders it. */
export interface BuildEvents {
  /**
   * A step starts. `index` counts from 1 over every FROM and instruction of the stages built;
   * `stage` is the stage's name, or its index when it has none. A step ends when the next one
   * starts or the build returns.
   */
  step?(e: { index: number; total: number; text: string; loc: SourceLocation; stage: string }): void;
  /** The step just announced reused a cached layer. */
  cached?(): void;
  /** The step just announced produced a layer. */
  layer?(e: { diffId: Digest; size: number }): void;
  warning?(message: string): void;
  /** FROM names an image the store lacks: it is pulled. */
  pull?(name: string): void;
  /** A base image's ONBUILD trigger runs (part of the FROM step). */
  trigger?(text: string): void;
  /** The step just announced runs although caches were given: why it missed them. */
  miss?(reason: string): void;
}

/** `--secret id=ID[,src=FILE|,env=VAR]`: where a secret's bytes come from (never stored). */
export interface SecretSource {
  readonly id: string;
  /** A file on the host. */
  readonly src?: string;
  /** An environment variable of the tsbuild process. */
  readonly env?: string;
}

/** `--ssh default|ID[=SOCKET|KEYFILE,...]`: an agent socket to forward, or key files to serve. */
export interface SshSource {
  readonly id: string;
  /** Sockets or private key files; empty: the agent at $SSH_AUTH_SOCK. */
  readonly paths: readonly string[];
}

/** `--add-host NAME:IP`: an extra line of every RUN step's /etc/hosts. */
export interface ExtraHost {
  readonly name: string;
  readonly ip: string;
}

/** `--allow`: entitlements a Dockerfile may use (`RUN --security=insecure` needs security.insecure). */
export type Entitlement = 'security.insecure' | 'network.host';

/**
 * `--build-context NAME=…`: what a FROM, COPY --from or RUN --mount from= naming NAME reads
 * instead of an image or a stage of that name: another image (by reference, or from an OCI
 * layout), or a directory (a local one, or a Git or HTTP context the caller fetched).
 */
export type NamedContext =
  | { readonly kind: 'image'; readonly ref: string }
  | { readonly kind: 'dir'; readonly dir: string }
  /** An OCI image layout directory: its one image, or the one named by tag or digest (oci-context.ts). */
  | { readonly kind: 'oci-layout'; readonly dir: string; readonly tag?: string; readonly digest?: string };

export interface BuildRequest {
  readonly plan: BuildPlan;
  readonly contextDir: string;
  /**
   * The Dockerfile's host path, when it is a file: `<Dockerfile>.dockerignore` beside it wins
   * over the context's `.dockerignore` (BuildKit's dockerui). Undefined for a Dockerfile on stdin.
   */
  readonly dockerfile?: string;
  readonly tags?: readonly string[];
  readonly buildArgs?: Readonly<Record<string, string>>;
  readonly target?: string;
  /**
   * The platform the image is for (--platform; TARGETPLATFORM and its parts); default this
   * machine's. A stage for a foreign platform may not RUN yet (platforms.ts).
   */
  readonly platform?: Platform;
  /**
   * Several platforms (--platform P1,P2): the image is built for each, and the tags name the
   * multi-platform image (an index in the store) that holds them (multi-platform.ts).
   */
  readonly platforms?: readonly Platform[];
  readonly noCache?: boolean;
  /**
   * Cache keys this invocation recorded, which --no-cache does not ignore: a multi-platform
   * build's targets share the steps of a `$BUILDPLATFORM` stage through them, so that it runs
   * once, as BuildKit solves identical steps once (multi-platform.ts).
   */
  readonly recordedThisBuild?: Set<Digest>;
  /** `--label`: labels set on the image built (not on the other stages). */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * `--pull`: ask the registry for every base image, even one the store has, and build on what
   * it has now (unchanged layers are not downloaded again).
   */
  readonly alwaysPull?: boolean;
  /** `--build-context`, by name. */
  readonly namedContexts?: ReadonlyMap<string, NamedContext>;
  /** How FROM pulls a base image the store lacks. */
  readonly pull?: Pick<PullOptions, 'insecureRegistries' | 'credentials' | 'progress' | 'platform'>;
  /** Images whose layers may be reused for RUN and WORKDIR steps (docker build --cache-from). */
  readonly cacheFrom?: readonly string[];
  /** Caches to take steps from, in order (--cache-from type=registry|local, or IMAGE): src/cache. */
  readonly cacheImports?: readonly CacheFrom[];
  /** Caches to write the build's steps to (--cache-to). */
  readonly cacheExports?: readonly CacheTo[];
  /**
   * `--output type=registry`: push the image under these names straight from the build instead
   * of storing it (buildx's registry output): layers known from a cache are mounted from the
   * cache's repository, never downloaded. `tags` are then not set.
   */
  readonly pushTo?: readonly string[];
  /**
   * `--squash`: the layers the Dockerfile made merged into one on the base image's
   * (src/builder/squash.ts). Not with an inline cache, which names the unsquashed layers.
   */
  readonly squash?: boolean;
  /** Clamp created times and file mtimes (SOURCE_DATE_EPOCH). */
  readonly sourceDateEpoch?: number;
  /** Secrets RUN --mount=type=secret may read. */
  readonly secrets?: readonly SecretSource[];
  /** Agents RUN --mount=type=ssh may reach. */
  readonly ssh?: readonly SshSource[];
  /** --network: every RUN's network unless its own --network says otherwise (default: the host's). */
  readonly network?: 'default' | 'none' | 'host';
  readonly addHosts?: readonly ExtraHost[];
  readonly allow?: readonly Entitlement[];
  readonly signal?: AbortSignal;
  readonly events?: BuildEvents;
  /** Where RUN output goes. */
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
}

export interface BuildResult {
  /** The image's ID; for several platforms, the index's. */
  readonly imageId: Digest;
  /** A multi-platform build's images, by platform, in the order asked. */
  readonly platforms?: readonly { readonly platform: Platform; readonly imageId: Digest }[];
  readonly tags: readonly string[];
  readonly config: ImageConfig;
  /** What `pushTo` pushed, in its order; the image is then not in the store. */
  readonly pushed?: readonly PushResult[];
}
