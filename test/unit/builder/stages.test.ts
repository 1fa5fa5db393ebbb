// Stage selection (src/builder/stages.ts): every FROM line is expanded with the ARGs outside a
// stage before a stage is chosen, so a stage named through an ARG (`FROM ${SRC}`,
// `FROM build-$VARIANT`) is built, and --target works with it; FROM --platform is expanded and
// parsed for every stage, and a RUN for another architecture needs its emulator (checked
// against binfmt_misc directories made here). In-process, no store; the rules are BuildKit's (dockerfile2llb buildDispatchStates, resolveTarget).
import { globalArgs, platformArgs, type BuildPlatforms } from '../../../src/builder/args.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkForeignRun } from '../../../src/builder/platforms.js';
import { resolveFroms, stagesToBuild } from '../../../src/builder/stages.js';
import { formatPlatform, hostPlatform } from '../../../src/image/platform.js';
import { DockerfileError } from '../../../src/errors.js';
import { parseDockerfile } from '../../../src/parse/index.js';

const AMD64: BuildPlatforms = { build: { os: 'linux', architecture: 'amd64' }, target: { os: 'linux', architecture: 'amd64' } };

/** The names (or indexes) of the stages a build of `dockerfile` runs, with those --build-args and --target. */
function chosen(dockerfile: string, opts: { buildArgs?: Record<string, string>; target?: string } = {}): string[] {
  const plan = parseDockerfile(dockerfile);
  const buildArgs = opts.buildArgs ?? {};
  const { values } = globalArgs(plan, buildArgs, platformArgs(AMD64, opts.target, plan, buildArgs));
  return stagesToBuild(plan, resolveFroms(plan, values), opts.target).map((s) => s.name ?? String(s.index));
}

function froms(dockerfile: string, buildArgs: Record<string, string> = {}) {
  const plan = parseDockerfile(dockerfile);
  const { values } = globalArgs(plan, buildArgs, platformArgs(AMD64, undefined, plan, buildArgs));
  return { plan, froms: resolveFroms(plan, values) };
}

const CHOOSER = `ARG SRC=prebuilt
FROM scratch AS prebuilt
FROM scratch AS source
FROM \${SRC} AS final
FROM scratch AS other
`;

describe('stages chosen through ARGs', () => {
  test('FROM ${SRC} builds the stage the global ARG names, and only that one', () => {
    expect(chosen(CHOOSER, { target: 'final' })).toEqual(['prebuilt', 'final']);
  });

  test('a --build-arg chooses another stage', () => {
    expect(chosen(CHOOSER, { target: 'final', buildArgs: { SRC: 'source' } })).toEqual(['source', 'final']);
  });

  test('--target names a stage whose own base is chosen through an ARG; the target is found in any case', () => {
    const df = 'ARG VARIANT=b\nFROM scratch AS build-a\nFROM scratch AS build-b\nFROM build-$VARIANT AS out\nFROM scratch\n';
    expect(chosen(df, { target: 'OUT' })).toEqual(['build-b', 'out']);
    expect(chosen(df, { target: 'out', buildArgs: { VARIANT: 'a' } })).toEqual(['build-a', 'out']);
  });

  test('a stage reached through a chosen stage and a COPY --from is built too', () => {
    const df = 'ARG SRC=mid\nFROM scratch AS tool\nFROM scratch AS mid\nCOPY --from=tool / /\nFROM ${SRC}\n';
    expect(chosen(df)).toEqual(['tool', 'mid', '2']);
  });

  test('an ARG that names no stage leaves an image name: no stage is built for it', () => {
    expect(chosen('ARG BASE=busybox\nFROM scratch AS busy\nFROM ${BASE}\n')).toEqual(['1']);
  });

  test('a stage name a platform ARG spells', () => {
    expect(chosen('FROM scratch AS base-amd64\nFROM scratch AS base-arm64\nFROM base-$TARGETARCH\n')).toEqual(['base-amd64', '2']);
  });

  test('a FROM that expands to nothing is an error at its line, even in a stage no one needs', () => {
    expect(() => chosen('ARG NONE\nFROM $NONE AS unused\nFROM scratch\n')).toThrow('Dockerfile:2: base name ($NONE) should not be blank');
  });

  test('a required ARG missing in FROM is an error at its line', () => {
    expect(() => chosen('FROM ${IMG:?needs-IMG}\n')).toThrow(/^Dockerfile:1: .*needs-IMG/);
  });
});

describe('FROM --platform', () => {
  test('$BUILDPLATFORM, $TARGETPLATFORM and a literal are expanded and parsed', () => {
    const df =
      'FROM --platform=$BUILDPLATFORM scratch\nFROM --platform=${TARGETPLATFORM} scratch\nFROM --platform=linux/x86_64 scratch\nFROM scratch\n';
    expect(froms(df).froms.map((f) => f.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'amd64' },
      undefined,
    ]);
  });

  // The check is of a RUN for a platform this machine's CPU does not run (platforms.ts), against
  // a binfmt_misc with no handler registered.
  const HOST = hostPlatform();
  const FOREIGN = HOST.architecture === 'arm64' ? 'linux/amd64' : 'linux/arm64';
  let noHandlers = '';
  beforeAll(() => {
    noHandlers = mkdtempSync(join(tmpdir(), 'tsbuild-binfmt-'));
    writeFileSync(join(noHandlers, 'status'), 'enabled\n');
  });
  afterAll(() => rmSync(noHandlers, { recursive: true, force: true }));
  const withoutEmulators = (...args: Parameters<typeof checkForeignRun>) => checkForeignRun(args[0], args[1], args[2], args[3], noHandlers);

  test("the build's platform passes the check, RUN or not", () => {
    const { plan, froms: f } = froms(
      `FROM --platform=$BUILDPLATFORM scratch\nRUN true\nFROM --platform=${formatPlatform(HOST)} scratch\nRUN true\n`,
    );
    expect(() => withoutEmulators(plan, plan.stages, f, HOST)).not.toThrow();
  });

  test('a RUN for another platform without an emulator is refused at its line; a stage for it without RUN is not', () => {
    const { plan, froms: f } = froms(`FROM scratch\nFROM --platform=${FOREIGN} scratch AS other\nCOPY a /\nRUN true\n`);
    let err: unknown;
    try {
      withoutEmulators(plan, plan.stages, f, HOST);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DockerfileError);
    expect((err as Error).message).toMatch(
      new RegExp(`^Dockerfile:4: RUN for ${FOREIGN} needs QEMU user emulation, and no binfmt_misc handler is registered for `),
    );
    const { plan: p2, froms: f2 } = froms(`FROM --platform=${FOREIGN} scratch\nCOPY a /\n`);
    expect(() => withoutEmulators(p2, p2.stages, f2, HOST)).not.toThrow();
  });

  test('a stage on a $BUILDPLATFORM stage is for this machine: its RUN is not refused in a foreign build', () => {
    const { plan, froms: f } = froms(
      'FROM --platform=$BUILDPLATFORM scratch AS tools\nFROM tools AS more\nRUN true\nFROM scratch\nCOPY --from=more / /\n',
    );
    const target = { os: 'linux', architecture: FOREIGN.split('/')[1]! };
    expect(() => withoutEmulators(plan, plan.stages, f, target)).not.toThrow();
  });

  test('a stage for another platform that the target does not need is not refused', () => {
    const { plan, froms: f } = froms(`FROM --platform=${FOREIGN} scratch AS other\nRUN true\nFROM scratch AS mine\n`);
    expect(() => withoutEmulators(plan, stagesToBuild(plan, f, 'mine'), f, HOST)).not.toThrow();
    expect(() => withoutEmulators(plan, stagesToBuild(plan, f, 'other'), f, HOST)).toThrow(/^Dockerfile:2: /);
  });

  test('an unset or malformed platform is an error at its line', () => {
    expect(() => froms('ARG P\nFROM --platform=$P scratch\n')).toThrow('Dockerfile:2: empty platform value from expression $P');
    expect(() => froms('FROM --platform=linux/amd64/v2/x scratch\n')).toThrow(
      /^Dockerfile:1: failed to parse platform linux\/amd64\/v2\/x: invalid platform/,
    );
  });
});
