// The ARGs outside a stage (src/builder/args.ts) and how a stage sees them
// (src/builder/instructions.ts): BuildKit's platform ARGs are defined for every FROM line, and in
// a stage only after an `ARG NAME` brings one in; a --build-arg or a global ARG overrides them.
// In-process, no store, no root; the expected values are BuildKit's (dockerfile2llb defaultArgs,
// buildMetaArgs, dispatchArg).
import { globalArgs, PLATFORM_ARGS, platformArgs, type BuildPlatforms } from '../../../src/builder/args.js';
import { dispatch, startStage, type BuildScope, type RunWork, type StageVars } from '../../../src/builder/instructions.js';
import type { ImageConfig } from '../../../src/image/config.js';
import { parseDockerfile } from '../../../src/parse/index.js';

const AMD64: BuildPlatforms = { build: { os: 'linux', architecture: 'amd64' }, target: { os: 'linux', architecture: 'amd64' } };
const ARM: BuildPlatforms = {
  build: { os: 'linux', architecture: 'amd64' },
  target: { os: 'linux', architecture: 'arm', variant: 'v7' },
};

function scratch(): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
}

/** The global ARG values of `dockerfile`, as a build with those platforms, --target and --build-args computes them. */
function globals(dockerfile: string, opts: { platforms?: BuildPlatforms; target?: string; buildArgs?: Record<string, string> } = {}) {
  const plan = parseDockerfile(dockerfile);
  const buildArgs = opts.buildArgs ?? {};
  return globalArgs(plan, buildArgs, platformArgs(opts.platforms ?? AMD64, opts.target, plan, buildArgs));
}

/** Runs the first stage's instructions of `dockerfile` with the build's global ARGs; the last RUN's work and the stage's variables. */
function firstStage(dockerfile: string, opts: Parameters<typeof globals>[1] = {}): { run?: RunWork; vars: StageVars } {
  const plan = parseDockerfile(dockerfile);
  const g = globals(dockerfile, opts);
  const scope: BuildScope = { escapeChar: '\\', buildArgs: opts.buildArgs ?? {}, globalArgs: g.values, now: () => '2026-01-01T00:00:00Z' };
  let { vars } = startStage(scratch());
  let run: RunWork | undefined;
  for (const step of plan.stages[0]!.steps) {
    const o = dispatch(vars, step, scope);
    vars = o.vars;
    if (o.work?.kind === 'RUN') run = o.work;
  }
  return { vars, ...(run ? { run } : {}) };
}

describe('platform ARGs', () => {
  test('every one BuildKit defines, with its value for a linux/amd64 build', () => {
    const { values } = globals('FROM scratch AS last\n');
    expect(Object.fromEntries(values)).toEqual({
      BUILDPLATFORM: 'linux/amd64',
      BUILDOS: 'linux',
      BUILDOSVERSION: '',
      BUILDARCH: 'amd64',
      BUILDVARIANT: '',
      TARGETPLATFORM: 'linux/amd64',
      TARGETOS: 'linux',
      TARGETOSVERSION: '',
      TARGETARCH: 'amd64',
      TARGETVARIANT: '',
      TARGETSTAGE: 'last',
    });
    expect([...values.keys()]).toEqual(PLATFORM_ARGS);
  });

  test('a variant is part of the platform and has an ARG of its own; the build platform stays apart', () => {
    const { values } = globals('FROM scratch\n', { platforms: ARM });
    expect(values.get('TARGETPLATFORM')).toBe('linux/arm/v7');
    expect(values.get('TARGETARCH')).toBe('arm');
    expect(values.get('TARGETVARIANT')).toBe('v7');
    expect(values.get('BUILDPLATFORM')).toBe('linux/amd64');
  });

  test('TARGETSTAGE: --target as given, else the last stage name, else "default"', () => {
    expect(globals('FROM scratch AS a\nFROM scratch AS b\n', { target: 'A' }).values.get('TARGETSTAGE')).toBe('A');
    expect(globals('FROM scratch AS a\nFROM scratch\n').values.get('TARGETSTAGE')).toBe('default');
  });

  test('a --build-arg replaces a platform ARG and counts as used; a global ARG with a default replaces it too', () => {
    const g = globals('ARG TARGETOS=plan9\nARG TARGETARCH\nFROM scratch\n', { buildArgs: { TARGETARCH: 'riscv64' } });
    expect(g.values.get('TARGETARCH')).toBe('riscv64');
    expect(g.values.get('TARGETOS')).toBe('plan9');
    expect(g.used).toContain('TARGETARCH');
  });

  test('a global ARG without a default keeps the platform value; a default may use one', () => {
    const g = globals('ARG TARGETPLATFORM\nARG DIR=dist/${TARGETOS}/${TARGETARCH}\nFROM scratch\n');
    expect(g.values.get('TARGETPLATFORM')).toBe('linux/amd64');
    expect(g.values.get('DIR')).toBe('dist/linux/amd64');
  });

  test('in a stage, a platform ARG is empty until `ARG NAME` brings it in, then set for words and RUN', () => {
    const before = firstStage('FROM scratch\nLABEL a=[$TARGETARCH]\n');
    expect(before.vars.config.config.Labels).toEqual({ a: '[]' });
    const { vars, run } = firstStage('FROM scratch\nARG TARGETOS TARGETARCH\nLABEL a=$TARGETOS/$TARGETARCH v=[$TARGETVARIANT]\nRUN true\n');
    expect(vars.config.config.Labels).toEqual({ a: 'linux/amd64', v: '[]' });
    expect(run!.env).toEqual(expect.arrayContaining(['TARGETOS=linux', 'TARGETARCH=amd64']));
    expect(run!.env.some((kv) => kv.startsWith('TARGETVARIANT='))).toBe(false);
  });

  test('an empty platform ARG brought in is set, empty (BUILDVARIANT on amd64)', () => {
    const { run } = firstStage('FROM scratch\nARG BUILDVARIANT\nRUN true\n');
    expect(run!.env).toContain('BUILDVARIANT=');
  });

  test('in a stage, `ARG NAME=default` wins over the platform value, and a --build-arg over both', () => {
    expect(firstStage('FROM scratch\nARG TARGETARCH=mine\nLABEL a=$TARGETARCH\n').vars.config.config.Labels).toEqual({ a: 'mine' });
    const given = firstStage('FROM scratch\nARG TARGETARCH=mine\nLABEL a=$TARGETARCH\n', { buildArgs: { TARGETARCH: 'cli' } });
    expect(given.vars.config.config.Labels).toEqual({ a: 'cli' });
  });

  test('platform ARGs are not persisted in the image', () => {
    const { vars } = firstStage('FROM scratch\nARG TARGETPLATFORM\nRUN true\n');
    expect(vars.config.config.Env?.some((kv) => kv.startsWith('TARGETPLATFORM='))).toBe(false);
  });
});
