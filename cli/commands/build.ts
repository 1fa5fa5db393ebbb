import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { build } from '../../src/builder/build.js';
import { parseAddHostFlag, parseAllowFlag, parseNetworkFlag } from '../../src/builder/request-flags.js';
import { shortId } from '../../src/digest.js';
import { InvalidInputError } from '../../src/errors.js';
import { parseDockerfile } from '../../src/parse/index.js';
import { formatPlatform, parsePlatform, type Platform } from '../../src/image/platform.js';
import { parseReference } from '../../src/image/reference.js';
import { exactArgs, storeOptions, parseCommand, usageError } from '../common.js';
import { Store } from '../../src/store/store.js';
import { buildOutput, type ProgressMode } from '../progress.js';
import { abortOnSignals } from '../signals.js';

const spec = {
  usage: 'build [OPTIONS] PATH',
  description: 'Build an image from a Dockerfile and the context directory PATH',
  options: {
    tag: { type: 'string', short: 't', multiple: true },
    file: { type: 'string', short: 'f' },
    'build-arg': { type: 'string', multiple: true },
    'no-cache': { type: 'boolean' },
    'cache-from': { type: 'string', multiple: true },
    reproducible: { type: 'boolean' },
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
  },
  optionHelp: [
    '  -t, --tag NAME[:TAG]         Name and optionally a tag (repeatable)',
    '  -f, --file FILE              Name of the Dockerfile (default: PATH/Dockerfile; - for stdin)',
    '      --build-arg KEY=VALUE    Set a build-time variable (repeatable)',
    '      --no-cache               Do not use the cache when building the image',
    '      --cache-from IMAGE       Reuse RUN/WORKDIR layers of this stored image (repeatable)',
    '      --reproducible           Clamp timestamps to SOURCE_DATE_EPOCH (0 when unset)',
    '      --target STAGE           Set the target build stage to build',
    "      --platform OS/ARCH       The image's platform; only this machine's (default: $DOCKER_DEFAULT_PLATFORM)",
    '      --secret SPEC            A secret for RUN --mount=type=secret: id=ID[,src=FILE|env=VAR] (repeatable)',
    '      --ssh SPEC               An SSH agent for RUN --mount=type=ssh: default|ID[=SOCKET|KEY,...] (repeatable)',
    "      --network MODE           The RUN steps' network: default (the host's), none or host",
    "      --add-host NAME:IP       Add a line to the RUN steps' /etc/hosts (repeatable)",
    '      --allow ENTITLEMENT      Allow network.host or security.insecure (repeatable)',
    '      --progress MODE          auto, plain or tty (default auto)',
    '  -o, --output SPEC            Also write the image: type=docker,dest=FILE or type=oci,dest=FILE (repeatable)',
    '      --push                   Push every -t tag to its registry after the build',
    '      --analyze                Print the size analysis (totals and hints) after the build',
    '      --insecure-registry HOST Reach HOST over plain HTTP for FROM pulls and --push (repeatable)',
    '  -q, --quiet                  Print only the image ID',
    '      --check                  Check the Dockerfile (lint rules, stages, ARGs) without building',
  ],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  exactArgs(args.positionals, 1, spec.usage);
  const v = args.values;
  const contextDir = resolve(args.positionals[0]!);
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
  if (!['auto', 'plain', 'tty', 'quiet'].includes(progress)) throw usageError(`invalid --progress ${progress}: use auto, plain or tty`);
  // Loaded only when given: every module is start-up time of every build.
  const secretsModule = v.secret?.length ? await import('../../src/builder/secrets.js') : undefined;
  const sshModule = v.ssh?.length ? await import('../../src/builder/ssh.js') : undefined;
  const secrets = secretsModule ? flagValues(v.secret, secretsModule.parseSecretFlag) : [];
  const ssh = sshModule ? flagValues(v.ssh, sshModule.parseSshFlag) : [];
  const addHosts = flagValues(v['add-host'], parseAddHostFlag);
  const allow = flagValues(v.allow, parseAllowFlag);
  const network = v.network === undefined ? undefined : flagValues([v.network], parseNetworkFlag)[0];
  const platform = platformFlag(v.platform ?? (process.env.DOCKER_DEFAULT_PLATFORM ? [process.env.DOCKER_DEFAULT_PLATFORM] : []));
  const file = v.file === undefined ? join(contextDir, 'Dockerfile') : v.file === '-' ? '-' : resolve(v.file);
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
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
  const outputs = (v.output ?? []).map(parseOutput);
  // A file or variable a --secret or --ssh names that is missing fails here, before a step runs
  // (as buildx fails when it starts its session); the builder reads them again when a step needs them.
  if (secretsModule) await asUsageError(() => new secretsModule.Secrets(secrets).check());
  if (sshModule) await asUsageError(() => new sshModule.SshAgents(ssh).check());
  if (v.push && !v.tag?.length) throw usageError('--push needs at least one -t NAME[:TAG] to push to');
  const plan = parseDockerfile(text, file === '-' ? 'Dockerfile' : basename(file));
  for (const w of plan.warnings ?? []) process.stderr.write(`Warning: ${w.loc.file}:${w.loc.line}: ${w.message}\n`);
  const sde = process.env.SOURCE_DATE_EPOCH ?? (v.reproducible ? '0' : undefined);
  if (sde !== undefined && !/^\d+$/.test(sde))
    throw usageError(`invalid SOURCE_DATE_EPOCH ${JSON.stringify(sde)}: want whole seconds since 1970`);
  const store = await Store.open(await storeOptions(v));
  const out = await buildOutput(progress);
  // Registry credentials are read by pull and push themselves, only when a base is pulled or
  // --push is given: a build that needs neither loads no registry code.
  const insecureRegistries = v['insecure-registry'] ?? [];
  const signals = abortOnSignals();
  try {
    const result = await build(store, {
      plan,
      contextDir,
      buildArgs,
      ...(v.tag ? { tags: v.tag } : {}),
      ...(v.target !== undefined ? { target: v.target } : {}),
      ...(platform !== undefined ? { platform } : {}),
      noCache: v['no-cache'] === true,
      ...(sde !== undefined ? { sourceDateEpoch: Number(sde) } : {}),
      ...(v['cache-from'] ? { cacheFrom: v['cache-from'] } : {}),
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
    out.finish();
    for (const o of outputs) {
      const { planSave, saveToFile } = await import('../../src/archive/save.js');
      const refs = result.tags.map((t) => parseReference(t));
      await saveToFile(await planSave([{ image: await store.image(result.imageId), refs }], o.type), o.dest, { signal: signals.signal });
      if (progress !== 'quiet') process.stdout.write(`Wrote ${o.type} archive ${o.dest}\n`);
    }
    if (v.push) {
      const { pushImage } = await import('../../src/registry/push.js');
      for (const tag of result.tags) {
        const pushed = await pushImage(store, parseReference(tag), {
          compression: 'gzip',
          insecureRegistries,
          signal: signals.signal,
        });
        if (progress !== 'quiet') process.stdout.write(`Pushed ${tag}: digest: ${pushed.manifestDigest} size: ${pushed.manifestSize}\n`);
      }
    }
    if (v.analyze) {
      const { analyzeImage } = await import('../../src/analyze/index.js');
      const { renderAnalysis } = await import('./analyze.js');
      const text = renderAnalysis(await analyzeImage(store, result.imageId), { summary: true });
      // With -q, stdout stays the image ID alone.
      (progress === 'quiet' ? process.stderr : process.stdout).write(`\n${text}`);
    }
    if (progress === 'quiet') {
      process.stdout.write(`${result.imageId}\n`);
    } else {
      process.stdout.write(`Successfully built ${shortId(result.imageId)}\n`);
      for (const t of result.tags) process.stdout.write(`Successfully tagged ${t}\n`);
    }
    return 0;
  } catch (err) {
    out.finish();
    const code = signals.exitCode();
    if (code !== undefined) {
      process.stderr.write(`Error: build interrupted\n`);
      return code;
    }
    throw err;
  } finally {
    signals.dispose();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Each value of a repeatable flag, parsed; a bad one is a usage error (one line, exit 2). */
function flagValues<T>(values: readonly string[] | undefined, parse: (value: string) => T | T[]): T[] {
  try {
    return (values ?? []).flatMap((value) => parse(value));
  } catch (err) {
    throw err instanceof InvalidInputError ? usageError(err.message) : err;
  }
}

/**
 * `--platform linux/amd64`, repeatable and comma-separated as buildx takes it. More than one
 * platform is a multi-platform build, which tsbuild does not do yet; the builder refuses a
 * platform other than this machine's.
 */
function platformFlag(values: readonly string[]): Platform | undefined {
  const list = flagValues(
    values.flatMap((v) => v.split(',')).filter((v) => v.trim() !== ''),
    parsePlatform,
  );
  const distinct = [...new Set(list.map(formatPlatform))];
  if (distinct.length > 1) throw usageError(`--platform ${distinct.join(',')}: multi-platform builds are not supported yet`);
  return list[0];
}

/** Runs a check of flag values; what it finds wrong is a usage error too. */
async function asUsageError(check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (err) {
    throw err instanceof InvalidInputError ? usageError(err.message) : err;
  }
}

interface OutputSpec {
  readonly type: 'docker' | 'oci';
  readonly dest: string;
}

/** `type=docker,dest=out.tar` (docker buildx's --output syntax, for the archive types). */
function parseOutput(spec: string): OutputSpec {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) throw usageError(`invalid --output ${spec}: want type=docker|oci,dest=FILE`);
    fields.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  const type = fields.get('type');
  const dest = fields.get('dest');
  if (type !== 'docker' && type !== 'oci') throw usageError(`unsupported --output type ${type ?? '(none)'}: use docker or oci`);
  if (!dest) throw usageError(`--output type=${type} needs dest=FILE`);
  return { type, dest: resolve(dest) };
}
