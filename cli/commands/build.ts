import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { build } from '../../src/builder/build.js';
import { parseAddHostFlag, parseAllowFlag, parseNetworkFlag } from '../../src/builder/request-flags.js';
import type { NamedContext } from '../../src/builder/request.js';
import { shortId, type Digest } from '../../src/digest.js';
import { InvalidInputError } from '../../src/errors.js';
import { parseDockerfile } from '../../src/parse/index.js';
import { formatPlatform, hostPlatform, platformMatches } from '../../src/image/platform.js';
import { familiarString, parseReference, parseTagReference, withDefaultTag } from '../../src/image/reference.js';
import { exactArgs, storeOptions, parseCommand, usageError } from '../common.js';
import { flagValues, keyValues, parseOutput, platformFlag } from './build-flags.js';
import { Store } from '../../src/store/store.js';
import { buildOutput, PROGRESS_MODES, type ProgressMode } from '../progress.js';
import { oneLine } from '../terminal.js';
import { abortOnSignals } from '../signals.js';

const spec = {
  usage: 'build [OPTIONS] PATH | URL | -',
  description: 'Build an image from a Dockerfile and a context: a directory, a Git or tarball URL, or - (a tar or a Dockerfile on stdin)',
  options: {
    tag: { type: 'string', short: 't', multiple: true },
    file: { type: 'string', short: 'f' },
    'build-arg': { type: 'string', multiple: true },
    'no-cache': { type: 'boolean' },
    'cache-from': { type: 'string', multiple: true },
    'cache-to': { type: 'string', multiple: true },
    reproducible: { type: 'boolean' },
    squash: { type: 'boolean' },
    output: { type: 'string', short: 'o', multiple: true },
    push: { type: 'boolean' },
    analyze: { type: 'boolean' },
    'insecure-registry': { type: 'string', multiple: true },
    target: { type: 'string' },
    platform: { type: 'string', multiple: true },
    secret: { type: 'string', multiple: true },
    ssh: { type: 'string', multiple: true },
    network: { type: 'string' },
    'add-host': { type: 'string', multiple: true },
    allow: { type: 'string', multiple: true },
    progress: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
    check: { type: 'boolean' },
    label: { type: 'string', multiple: true },
    iidfile: { type: 'string' },
    'metadata-file': { type: 'string' },
    pull: { type: 'boolean' },
    'build-context': { type: 'string', multiple: true },
  },
  optionHelp: [
    '  -t, --tag NAME[:TAG]         Name and optionally a tag (repeatable)',
    '  -f, --file FILE              Name of the Dockerfile (default: PATH/Dockerfile; - for stdin)',
    '      --build-arg KEY=VALUE    Set a build-time variable (repeatable)',
    '      --no-cache               Do not use the cache when building the image',
    '      --cache-from SRC         Take steps from a cache (repeatable, tried in order): IMAGE (stored, or a',
    '                               registry image with an inline cache), type=registry,ref=REF or type=local,src=DIR',
    '      --cache-to DEST          Write the build cache (repeatable): type=registry,ref=REF[,mode=min|max]',
    '                               [,compression=gzip|zstd][,oci-mediatypes=BOOL][,ignore-error=BOOL],',
    '                               type=local,dest=DIR[,…] or type=inline (in the image)',
    '      --reproducible           Clamp timestamps to SOURCE_DATE_EPOCH (0 when unset)',
    "      --squash                 Merge the Dockerfile's layers into one on the base image's",
    '      --target STAGE           Set the target build stage to build',
    "      --platform OS/ARCH[,...] The image's platforms; several make a multi-platform image (default: $DOCKER_DEFAULT_PLATFORM, else this machine's)",
    '      --secret SPEC            A secret for RUN --mount=type=secret: id=ID[,src=FILE|env=VAR] (repeatable)',
    '      --ssh SPEC               An SSH agent for RUN --mount=type=ssh: default|ID[=SOCKET|KEY,...] (repeatable)',
    "      --network MODE           The RUN steps' network: default (the host's), none or host",
    "      --add-host NAME:IP       Add a line to the RUN steps' /etc/hosts (repeatable)",
    '      --allow ENTITLEMENT      Allow network.host or security.insecure (repeatable)',
    '      --progress MODE          auto, plain, tty or rawjson (JSON lines on stderr; default auto)',
    '  -o, --output SPEC            Also write the result (repeatable): type=docker|oci,dest=FILE (an image archive),',
    '                               type=local,dest=DIR or type=tar,dest=FILE|- (the final filesystem),',
    '                               type=image[,name=NAME][,push=true] or type=registry[,name=NAME] (tag, push)',
    '      --push                   Push every -t tag to its registry after the build',
    '      --analyze                Print the size analysis (totals and hints) after the build',
    '      --insecure-registry HOST Reach HOST over plain HTTP for FROM pulls and --push (repeatable)',
    '  -q, --quiet                  Print only the image ID',
    '      --check                  Check the Dockerfile (lint rules, stages, ARGs) without building',
    '      --label KEY=VALUE        Set a label on the image (repeatable)',
    '      --iidfile FILE           Write the image ID to FILE',
    "      --metadata-file FILE     Write the build's result to FILE as JSON (buildx's keys)",
    '      --pull                   Ask the registry for every base image, even one the store has',
    '      --build-context NAME=SRC Another context for FROM, COPY --from and RUN --mount from=NAME:',
    '                               a directory, docker-image://REF, oci-layout://DIR, or a Git or tarball URL (repeatable)',
  ],
} as const;

/** A context to fetch before the build (remote-context.ts): `-`, a URL, or a Git address. */
const REMOTE_CONTEXT = /^(-$|https?:\/\/|git:\/\/|git@|github\.com\/)/;

export async function run(argv: string[]): Promise<number> {
  // What was fetched for the build (Git and URL contexts, stdin) is removed however it ends.
  const disposers: (() => Promise<void>)[] = [];
  try {
    return await runBuild(argv, disposers);
  } finally {
    for (const dispose of disposers) await dispose();
  }
}

async function runBuild(argv: string[], disposers: (() => Promise<void>)[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  exactArgs(args.positionals, 1, spec.usage);
  const v = args.values;
  const contextArg = args.positionals[0]!;
  if (contextArg === '-' && v.file === '-') throw usageError('the context and the Dockerfile cannot both be read from stdin');
  const buildArgs: Record<string, string> = {};
  for (const kv of v['build-arg'] ?? []) {
    const i = kv.indexOf('=');
    if (i < 0) {
      // `--build-arg NAME` takes the value from the environment, as docker does.
      if (process.env[kv] !== undefined) buildArgs[kv] = process.env[kv]!;
    } else {
      buildArgs[kv.slice(0, i)] = kv.slice(i + 1);
    }
  }
  const progress = (v.quiet ? 'quiet' : (v.progress ?? 'auto')) as ProgressMode;
  if (!PROGRESS_MODES.includes(progress)) throw usageError(`invalid --progress ${progress}: use auto, plain, tty or rawjson`);
  // Loaded only when given: every module is start-up time of every build.
  const secretsModule = v.secret?.length ? await import('../../src/builder/secrets.js') : undefined;
  const sshModule = v.ssh?.length ? await import('../../src/builder/ssh.js') : undefined;
  const secrets = secretsModule ? flagValues(v.secret, secretsModule.parseSecretFlag) : [];
  const ssh = sshModule ? flagValues(v.ssh, sshModule.parseSshFlag) : [];
  const addHosts = flagValues(v['add-host'], parseAddHostFlag);
  const allow = flagValues(v.allow, parseAllowFlag);
  const network = v.network === undefined ? undefined : flagValues([v.network], parseNetworkFlag)[0];
  const platforms = platformFlag(v.platform ?? (process.env.DOCKER_DEFAULT_PLATFORM ? [process.env.DOCKER_DEFAULT_PLATFORM] : []));
  const multi = platforms.length > 1;
  const outputs = (v.output ?? []).map(parseOutput);
  if (multi && outputs.some((o) => o.type === 'local' || o.type === 'tar'))
    throw usageError(
      `--platform ${platforms.map(formatPlatform).join(',')}: --output type=local and type=tar take one platform's filesystem`,
    );
  // Loaded only when given: the cache's modules are start-up time of every build.
  const cacheSpec = v['cache-from']?.length || v['cache-to']?.length ? await import('../../src/cache/spec.js') : undefined;
  const cacheImports = cacheSpec ? flagValues(v['cache-from'], cacheSpec.parseCacheFrom) : [];
  const cacheExports = cacheSpec ? flagValues(v['cache-to'], cacheSpec.parseCacheTo) : [];
  if (v.squash && cacheExports.some((c) => c.type === 'inline'))
    throw usageError('--squash cannot be used with --cache-to type=inline: the inline cache names the layers squashing merges');
  // A bare IMAGE also feeds the classic builder's --cache-from (RUN and WORKDIR by command).
  const classicCacheFrom = cacheImports.flatMap((c) => (c.type === 'image' ? [c.ref] : []));
  const labels = keyValues(v.label, '--label');
  // type=image and type=registry outputs name the image and may push it, as -t and --push do.
  const tags = [...(v.tag ?? []), ...outputs.flatMap((o) => (o.type === 'image' ? o.names : []))];
  // Each name is checked before anything is built: a bad one, or one pinning a digest, as docker refuses it.
  flagValues(tags, (t) => parseTagReference(t));
  const push = v.push === true || outputs.some((o) => o.type === 'image' && o.push);
  if (push && !tags.length) throw usageError('--push needs at least one -t NAME[:TAG] to push to');
  // type=registry pushes the image as the build holds it, not stored (as buildx's registry
  // output does): layers taken from a cache are then never downloaded. An output that reads the
  // stored image, or --analyze, keeps it stored.
  // A multi-platform image is stored, then pushed as an index.
  const pushOnly =
    !multi && outputs.some((o) => o.type === 'image' && o.registry) && !outputs.some((o) => o.type !== 'image') && v.analyze !== true;
  // `-o -`: the filesystem's tar is the output, on stdout; everything else goes to stderr.
  const tarToStdout = outputs.some((o) => 'dest' in o && o.dest === '-');
  if (outputs.filter((o) => 'dest' in o && o.dest === '-').length > 1) throw usageError('only one --output can go to stdout');
  if (tarToStdout && progress === 'quiet') throw usageError('-q prints the image ID on stdout, where -o - writes the tar: use one of them');
  const say = tarToStdout ? process.stderr : process.stdout;
  // Fetched once every flag is known to be good: a Git clone can take a while.
  const fetched = REMOTE_CONTEXT.test(contextArg) ? await fetchRemote(contextArg, disposers) : undefined;
  const contextDir = fetched?.dir ?? resolve(contextArg);
  const namedContexts = await parseBuildContexts(v['build-context'], disposers);
  let file: string;
  if (fetched?.dockerfileText !== undefined || v.file === '-') file = '-';
  else if (v.file === undefined) file = join(contextDir, 'Dockerfile');
  // A fetched context's -f names a file inside it, as docker build reads one from the repository.
  else file = fetched ? join(contextDir, v.file) : resolve(v.file);
  let text: string;
  try {
    text = fetched?.dockerfileText ?? (file === '-' ? await readStdin() : await readFile(file, 'utf8'));
  } catch (err) {
    throw usageError(`unable to read the Dockerfile ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (v.check) {
    // No store, no base image, no step: only the Dockerfile and the context's ignore file.
    const { runCheck } = await import('./build-check.js');
    const name = file === '-' ? 'Dockerfile' : basename(file);
    return runCheck(text, {
      file: name,
      contextDir,
      buildArgs,
      ...(file === '-' ? {} : { dockerfilePath: file }),
      ...(v.target ? { target: v.target } : {}),
    });
  }
  // A file or variable a --secret or --ssh names that is missing fails here, before a step runs
  // (as buildx fails when it starts its session); the builder reads them again when a step needs them.
  if (secretsModule) await asUsageError(() => new secretsModule.Secrets(secrets).check());
  if (sshModule) await asUsageError(() => new sshModule.SshAgents(ssh).check());
  const plan = parseDockerfile(text, file === '-' ? 'Dockerfile' : basename(file));
  for (const w of plan.warnings ?? []) process.stderr.write(`Warning: ${oneLine(`${w.loc.file}:${w.loc.line}: ${w.message}`)}\n`);
  const sde = process.env.SOURCE_DATE_EPOCH ?? (v.reproducible ? '0' : undefined);
  if (sde !== undefined && !/^\d+$/.test(sde))
    throw usageError(`invalid SOURCE_DATE_EPOCH ${JSON.stringify(sde)}: want whole seconds since 1970`);
  const store = await Store.open(await storeOptions(v));
  const out = await buildOutput(progress, say);
  // Registry credentials are read by pull and push themselves, only when a base is pulled or
  // --push is given: a build that needs neither loads no registry code.
  const insecureRegistries = v['insecure-registry'] ?? [];
  const signals = abortOnSignals();
  try {
    const result = await build(store, {
      plan,
      contextDir,
      ...(file !== '-' ? { dockerfile: file } : {}),
      buildArgs,
      ...(tags.length ? (pushOnly ? { pushTo: tags } : { tags }) : {}),
      ...(Object.keys(labels).length ? { labels } : {}),
      ...(v.pull ? { alwaysPull: true } : {}),
      ...(namedContexts.size ? { namedContexts } : {}),
      ...(v.target !== undefined ? { target: v.target } : {}),
      ...(platforms.length === 1 ? { platform: platforms[0]! } : multi ? { platforms } : {}),
      noCache: v['no-cache'] === true,
      ...(v.squash ? { squash: true } : {}),
      ...(sde !== undefined ? { sourceDateEpoch: Number(sde) } : {}),
      ...(classicCacheFrom.length ? { cacheFrom: classicCacheFrom } : {}),
      ...(cacheImports.length ? { cacheImports } : {}),
      ...(cacheExports.length ? { cacheExports } : {}),
      ...(secrets.length ? { secrets } : {}),
      ...(ssh.length ? { ssh } : {}),
      ...(network !== undefined ? { network } : {}),
      ...(addHosts.length ? { addHosts } : {}),
      ...(allow.length ? { allow } : {}),
      pull: { insecureRegistries },
      signal: signals.signal,
      events: out.events,
      stdout: out.stdout,
      stderr: out.stderr,
    });
    out.done(result.imageId);
    for (const o of outputs) {
      if (o.type === 'docker' || o.type === 'oci') {
        const { planSave, saveToFile, saveToStream } = await import('../../src/archive/save.js');
        const { saveTarget } = await import('../../src/archive/select.js');
        const refs = result.tags.map((t) => parseReference(t));
        const index = result.platforms ? { index: await store.index(result.imageId) } : {};
        const plan = await planSave([await saveTarget(store, { id: result.imageId, refs, ...index })], o.type);
        if (o.dest === '-') await saveToStream(plan, process.stdout, { signal: signals.signal });
        else await saveToFile(plan, o.dest, { signal: signals.signal });
        if (progress !== 'quiet') say.write(`Wrote ${o.type} archive ${o.dest === '-' ? 'to stdout' : o.dest}\n`);
      } else if (o.type === 'local' || o.type === 'tar') {
        await writeFilesystem(store, result.imageId, { type: o.type, dest: o.dest });
        if (progress !== 'quiet') say.write(`Wrote the filesystem to ${o.dest === '-' ? 'stdout' : o.dest}\n`);
      }
    }
    let manifestDigest: string | undefined = result.pushed?.[0]?.manifestDigest;
    for (const [i, pushed] of (result.pushed ?? []).entries()) {
      if (progress !== 'quiet')
        say.write(
          `Pushed ${familiarString(withDefaultTag(parseReference(tags[i]!)))}: digest: ${pushed.manifestDigest} size: ${pushed.manifestSize}\n`,
        );
    }
    if (push && !pushOnly) {
      const { pushImage } = await import('../../src/registry/push.js');
      for (const tag of result.tags) {
        const pushed = await pushImage(store, parseReference(tag), {
          compression: 'gzip',
          insecureRegistries,
          signal: signals.signal,
        });
        manifestDigest ??= pushed.manifestDigest;
        if (progress !== 'quiet') say.write(`Pushed ${tag}: digest: ${pushed.manifestDigest} size: ${pushed.manifestSize}\n`);
      }
    }
    if (v.iidfile !== undefined) await writeResultFile(v.iidfile, result.imageId);
    if (v['metadata-file'] !== undefined) {
      // buildx's keys. With an image store like Docker's own (not containerd's), moby's exporter
      // reports the image ID as containerimage.digest; a pushed image has a manifest digest.
      const metadata = {
        'containerimage.config.digest': result.imageId,
        'containerimage.digest': manifestDigest ?? result.imageId,
        ...(tags.length ? { 'image.name': tags.join(',') } : {}),
      };
      await writeResultFile(v['metadata-file'], `${JSON.stringify(metadata, null, 2)}\n`);
    }
    if (v.analyze) {
      const { analyzeImage } = await import('../../src/analyze/index.js');
      const { renderAnalysis } = await import('./analyze.js');
      // A multi-platform build's analysis is of this machine's image (else the first platform's).
      const host = result.platforms?.find((p) => platformMatches(hostPlatform(), p.platform)) ?? result.platforms?.[0];
      const text = renderAnalysis(await analyzeImage(store, host?.imageId ?? result.imageId), { summary: true });
      // With -q, stdout stays the image ID alone.
      (progress === 'quiet' ? process.stderr : say).write(`\n${text}`);
    }
    if (progress === 'quiet') {
      process.stdout.write(`${result.imageId}\n`);
    } else {
      say.write(`Successfully built ${shortId(result.imageId)}\n`);
      for (const t of result.tags) say.write(`Successfully tagged ${t}\n`);
    }
    return 0;
  } catch (err) {
    const code = signals.exitCode();
    out.failed(code !== undefined ? new Error('build interrupted') : err);
    if (code !== undefined) {
      process.stderr.write(`Error: build interrupted\n`);
      return code;
    }
    throw err;
  } finally {
    signals.dispose();
  }
}

/** Fetches a Git, URL or stdin context; it is removed when the command ends. */
async function fetchRemote(spec: string, disposers: (() => Promise<void>)[]): Promise<{ dir: string; dockerfileText?: string }> {
  const { fetchContext } = await import('../../src/builder/remote-context.js');
  const fetched = await fetchContext(spec);
  disposers.push(fetched.dispose);
  return fetched;
}

/** `--build-context NAME=DIR|docker-image://REF|oci-layout://DIR|URL`, as buildx takes it. */
async function parseBuildContexts(
  values: readonly string[] | undefined,
  disposers: (() => Promise<void>)[],
): Promise<Map<string, NamedContext>> {
  const out = new Map<string, NamedContext>();
  for (const [name, value] of Object.entries(keyValues(values, '--build-context'))) {
    if (value.startsWith('docker-image://')) {
      const ref = value.slice('docker-image://'.length);
      try {
        parseReference(ref);
      } catch (err) {
        throw usageError(`invalid --build-context ${name}=${value}: ${(err as Error).message}`);
      }
      out.set(name, { kind: 'image', ref });
    } else if (value.startsWith('oci-layout://')) {
      // BuildKit's oci-layout://PATH[:TAG][@DIGEST]: a tag is what follows the last ':' after the last '/'.
      let rest = value.slice('oci-layout://'.length);
      let digest: string | undefined;
      const at = rest.lastIndexOf('@');
      if (at >= 0) {
        digest = rest.slice(at + 1);
        rest = rest.slice(0, at);
        if (!/^sha256:[0-9a-f]{64}$/.test(digest))
          throw usageError(`invalid --build-context ${name}=${value}: @${digest} is not a sha256 digest`);
      }
      let tag: string | undefined;
      const colon = rest.lastIndexOf(':');
      if (colon > rest.lastIndexOf('/')) {
        tag = rest.slice(colon + 1);
        rest = rest.slice(0, colon);
      }
      out.set(name, { kind: 'oci-layout', dir: resolve(rest), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) });
    } else if (/^[a-z][a-z0-9+.-]*:\/\//.test(value) && !/^(https?|git):\/\//.test(value)) {
      throw usageError(
        `unsupported --build-context ${name}=${value}: use a directory, docker-image://REF, oci-layout://DIR, or a Git or HTTP(S) URL`,
      );
    } else if (value === '-') {
      throw usageError(`invalid --build-context ${name}=-: only the main context can be read from stdin`);
    } else if (REMOTE_CONTEXT.test(value)) {
      out.set(name, { kind: 'dir', dir: (await fetchRemote(value, disposers)).dir });
    } else {
      out.set(name, { kind: 'dir', dir: resolve(value) });
    }
  }
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs a check of flag values; what it finds wrong is a usage error too. */
async function asUsageError<T>(check: () => Promise<T>): Promise<T> {
  try {
    return await check();
  } catch (err) {
    throw err instanceof InvalidInputError ? usageError(err.message) : err;
  }
}

/** --output type=local or type=tar: the image's filesystem; a tar is written whole or not at all. */
async function writeFilesystem(store: Store, imageId: Digest, o: { readonly type: 'local' | 'tar'; readonly dest: string }): Promise<void> {
  const { exportFilesystem } = await import('../../src/builder/export-fs.js');
  const top = (await store.image(imageId)).layers.at(-1)?.record;
  if (o.type === 'local') return exportFilesystem(store, top, { type: 'local', dir: o.dest });
  if (o.dest === '-') return exportFilesystem(store, top, { type: 'tar', sink: process.stdout });
  const { AtomicFile } = await import('../../src/fs/atomic.js');
  const file = AtomicFile.create(o.dest, { durable: false });
  try {
    await exportFilesystem(store, top, { type: 'tar', sink: file.stream });
    file.stream.end();
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

/** --iidfile and --metadata-file: written whole (a reader never sees half of one). */
async function writeResultFile(path: string, text: string): Promise<void> {
  const { writeFileAtomic } = await import('../../src/fs/atomic.js');
  await writeFileAtomic(resolve(path), text);
}
