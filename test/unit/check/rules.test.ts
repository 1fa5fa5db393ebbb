// `build --check`'s rules, in process: each BuildKit rule fires with BuildKit's message at the
// instruction's line, stays quiet on the form BuildKit accepts, and `# check=` /
// BUILDKIT_DOCKERFILE_CHECK choose the rules and whether they fail the check.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkDockerfile, type CheckOptions, type CheckResult } from '../../../src/check/index.js';
import { tempDir } from '../../helpers/tsbuild.js';

async function check(text: string, options: Partial<CheckOptions> = {}): Promise<CheckResult> {
  return checkDockerfile(text, { file: 'Dockerfile', ...options });
}

/** `RULE:LINE message` for each violation, in line order. */
async function found(text: string, options: Partial<CheckOptions> = {}): Promise<string[]> {
  const result = await check(text, options);
  expect(result.errors).toEqual([]);
  return result.violations.map((v) => `${v.rule.name}:${v.loc.line} ${v.message}`);
}

/** The violations of one rule only. */
async function rule(name: string, text: string, options: Partial<CheckOptions> = {}): Promise<string[]> {
  return (await found(text, options)).filter((line) => line.startsWith(`${name}:`));
}

describe('BuildKit rules', () => {
  test('a clean Dockerfile has nothing to report', async () => {
    const text =
      'FROM alpine:3.20 AS build\nWORKDIR /src\nCOPY go.mod ./\nRUN echo hi\nFROM scratch\nCOPY --from=build /src /src\nCMD ["/src/app"]\n';
    expect(await found(text)).toEqual([]);
  });

  test('StageNameCasing and FromAsCasing', async () => {
    const text = 'FROM alpine AS Build\nfrom alpine AS base\nFROM alpine as final\n';
    expect(await rule('StageNameCasing', text)).toEqual(["StageNameCasing:1 Stage name 'Build' should be lowercase"]);
    expect(await rule('FromAsCasing', text)).toEqual([
      "FromAsCasing:2 'AS' and 'from' keywords' casing do not match",
      "FromAsCasing:3 'as' and 'FROM' keywords' casing do not match",
    ]);
  });

  test('NoEmptyContinuation names the instruction that continues through an empty line', async () => {
    const text = 'FROM alpine\nRUN echo a && \\\n\n    echo b\nRUN echo c && \\\n# a comment is fine\n    echo d\n';
    expect(await rule('NoEmptyContinuation', text)).toEqual(['NoEmptyContinuation:2 Empty continuation line']);
  });

  test('ConsistentInstructionCasing follows the majority; global ARGs do not count', async () => {
    const text = 'ARG X=1\nfrom alpine\nrun echo a\nRUN echo b\nRun echo c\n';
    expect(await rule('ConsistentInstructionCasing', text)).toEqual([
      "ConsistentInstructionCasing:4 Command 'RUN' should match the case of the command majority (lowercase)",
      "ConsistentInstructionCasing:5 Command 'Run' should match the case of the command majority (lowercase)",
    ]);
  });

  test('ReservedStageName; DuplicateStageName is also an error, as tsbuild cannot build it', async () => {
    expect(await rule('ReservedStageName', 'FROM alpine AS context\nFROM alpine\n')).toEqual([
      'ReservedStageName:1 Stage name should not use the same name as reserved stage "context"',
    ]);
    const result = await check('FROM alpine AS a\nFROM alpine AS a\n');
    expect(result.violations.map((v) => `${v.rule.name}:${v.loc.line}`)).toEqual(['DuplicateStageName:2']);
    expect(result.errors).toEqual(['Dockerfile:2: Duplicate stage name "a", stage names should be unique']);
    expect(result.failed).toBe(true);
  });

  test('JSONArgsRecommended, unless a SHELL was set', async () => {
    expect(await rule('JSONArgsRecommended', 'FROM alpine\nENTRYPOINT my-app --serve\nCMD ["x"]\n')).toEqual([
      'JSONArgsRecommended:2 JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals',
    ]);
    expect(await rule('JSONArgsRecommended', 'FROM alpine\nSHELL ["/bin/ash", "-c"]\nCMD my-app\n')).toEqual([]);
  });

  test('MaintainerDeprecated and LegacyKeyValueFormat', async () => {
    const text = 'FROM alpine\nMAINTAINER me\nENV A 1\nENV B=2\nLABEL c d\n';
    expect(await found(text)).toEqual([
      'MaintainerDeprecated:2 Maintainer instruction is deprecated in favor of using label',
      'LegacyKeyValueFormat:3 "ENV key=value" should be used instead of legacy "ENV key value" format',
      'LegacyKeyValueFormat:5 "LABEL key=value" should be used instead of legacy "LABEL key value" format',
    ]);
  });

  test('UndefinedArgInFrom suggests the declared name; platform ARGs are declared', async () => {
    const text = 'ARG VERSION=3.20\nFROM --platform=$BUILDPLATFORM alpine:3${VERSIN}\n';
    expect(await rule('UndefinedArgInFrom', text)).toEqual([
      "UndefinedArgInFrom:2 FROM argument 'VERSIN' is not declared (did you mean VERSION?)",
    ]);
  });

  test('InvalidDefaultArgInFrom: the default alone names no image', async () => {
    const text = 'ARG TAG\nFROM alpine:${TAG}\n';
    expect(await rule('InvalidDefaultArgInFrom', text, { buildArgs: { TAG: '3.20' } })).toEqual([
      'InvalidDefaultArgInFrom:2 Default value for ARG alpine:${TAG} results in empty or invalid base image name',
    ]);
  });

  test('WorkdirRelativePath only for the first WORKDIR of a stage', async () => {
    expect(await rule('WorkdirRelativePath', 'FROM alpine\nWORKDIR app\nWORKDIR sub\n')).toEqual([
      'WorkdirRelativePath:2 Relative workdir "app" can have unexpected results if the base image changes',
    ]);
    expect(await rule('WorkdirRelativePath', 'FROM alpine\nWORKDIR /app\nWORKDIR sub\n')).toEqual([]);
    expect(await rule('WorkdirRelativePath', '# escape=`\nFROM mcr.microsoft.com/windows/nanoserver\nWORKDIR C:\\go\n')).toEqual([]);
  });

  test('UndefinedVar where the whole environment is known (a stage on scratch)', async () => {
    const text = 'FROM scratch\nARG TARGETARCH\nENV APP=/app\nCOPY bin/$TARGETARCH/app $APP/\nCOPY bin/$TARGETOS/x ${APPP}/\n';
    expect(await rule('UndefinedVar', text)).toEqual([
      "UndefinedVar:5 Usage of undefined variable '$TARGETOS'",
      "UndefinedVar:5 Usage of undefined variable '$APPP' (did you mean $APP?)",
    ]);
  });

  test('MultipleInstructionsDisallowed reports the instruction that is ignored', async () => {
    expect(await rule('MultipleInstructionsDisallowed', 'FROM alpine\nCMD ["a"]\nCMD ["b"]\n')).toEqual([
      'MultipleInstructionsDisallowed:2 Multiple CMD instructions should not be used in the same stage because only the last one will be used',
    ]);
  });

  test('SecretsUsedInArgOrEnv', async () => {
    const text = 'FROM alpine\nARG GITHUB_TOKEN\nENV DB_PASSWORD=x PUBLIC_KEY=y PASSWORD_FILE=z\n';
    expect(await rule('SecretsUsedInArgOrEnv', text)).toEqual([
      'SecretsUsedInArgOrEnv:2 Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN")',
      'SecretsUsedInArgOrEnv:3 Do not use ARG or ENV instructions for sensitive data (ENV "DB_PASSWORD")',
    ]);
  });

  test('RedundantTargetPlatform and FromPlatformFlagConstDisallowed', async () => {
    const host = (await import('../../../src/image/platform.js')).hostPlatform();
    const constant = `${host.os}/${host.architecture}`;
    const text = `FROM --platform=$TARGETPLATFORM alpine AS a\nFROM --platform=${constant} alpine AS b\nFROM --platform=${constant} alpine AS ${host.architecture}-build\n`;
    expect(await found(text)).toEqual([
      'RedundantTargetPlatform:1 Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior',
      `FromPlatformFlagConstDisallowed:2 FROM --platform flag should not use constant value "${constant}"`,
    ]);
  });

  test('CopyIgnoredFile reads the ignore file, Dockerfile-specific first, and nothing else of the context', async () => {
    const context = await tempDir();
    await writeFile(join(context, '.dockerignore'), 'secret.txt\nbuild/\n');
    const text = 'FROM alpine\nCOPY secret.txt ./build/out /dst/\nADD app.tar /\nCOPY --from=alpine secret.txt /x\n';
    expect(await rule('CopyIgnoredFile', text, { contextDir: context })).toEqual([
      'CopyIgnoredFile:2 Attempting to Copy file "secret.txt" that is excluded by .dockerignore',
      'CopyIgnoredFile:2 Attempting to Copy file "build/out" that is excluded by .dockerignore',
    ]);
    await mkdir(join(context, 'df'));
    await writeFile(join(context, 'df', 'app.Dockerfile.dockerignore'), 'app.tar\n');
    expect(await rule('CopyIgnoredFile', text, { contextDir: context, dockerfilePath: join(context, 'df', 'app.Dockerfile') })).toEqual([
      'CopyIgnoredFile:3 Attempting to Add file "app.tar" that is excluded by .dockerignore',
    ]);
    expect(await rule('CopyIgnoredFile', 'FROM alpine\nCOPY . /app/\n', { contextDir: context })).toEqual([]);
    await writeFile(join(context, '.dockerignore'), '*\n');
    expect(await rule('CopyIgnoredFile', 'FROM alpine\nCOPY . /app/\nCOPY / /root/\n', { contextDir: context })).toEqual([
      'CopyIgnoredFile:2 Attempting to Copy file "." that is excluded by .dockerignore',
      'CopyIgnoredFile:3 Attempting to Copy file "/" that is excluded by .dockerignore',
    ]);
    // With an exception, an excluded directory may hold included files: BuildKit says nothing.
    await writeFile(join(context, '.dockerignore'), 'build/\n!build/out\nsecret.txt\n');
    expect(await rule('CopyIgnoredFile', text, { contextDir: context })).toEqual([]);
  });
});

describe("tsbuild's size rules", () => {
  test('PackageCacheInLayer: apt lists and apk caches left in the image', async () => {
    const text = [
      'FROM debian:bookworm AS build',
      'RUN apt-get update && apt-get install -y gcc',
      'FROM debian:bookworm',
      'RUN apt-get update && apt-get install -y curl',
      'RUN apt-get update && apt-get install -y git && rm -rf /var/lib/apt/lists/*',
      'RUN --mount=type=cache,target=/var/lib/apt,sharing=locked apt-get update && apt-get install -y jq',
      'RUN apk add curl',
      'RUN apk add --no-cache curl',
      'RUN set -eux; apt-get update; apt-get install -y --no-install-recommends ca-certificates; apt-get dist-clean',
      "RUN echo 'Verifying pip install ...' && pip --version",
      'RUN pip install --no-cache-dir requests && pip install flask',
    ].join('\n');
    // The build stage's lists never reach the image: only the last stage's RUNs count.
    expect(await rule('PackageCacheInLayer', text)).toEqual([
      'PackageCacheInLayer:4 This RUN leaves apt package lists in its layer: end the RUN with `&& rm -rf /var/lib/apt/lists/*`, or mount a cache there (--mount=type=cache,target=/var/lib/apt)',
      'PackageCacheInLayer:7 This RUN leaves the apk cache in its layer: use `apk add --no-cache`, or mount a cache there (--mount=type=cache,target=/var/cache/apk)',
    ]);
    expect(await rule('PackageCacheInLayer', 'FROM python:3\nRUN pip install flask\n')).toEqual([
      'PackageCacheInLayer:2 This RUN leaves the pip cache in its layer: use `pip install --no-cache-dir`, or mount a cache there (--mount=type=cache,target=/root/.cache/pip)',
    ]);
  });

  test('CopyBeforeDependencyInstall at the COPY of the whole context', async () => {
    const text = 'FROM node:22\nWORKDIR /app\nCOPY . .\nRUN npm ci\nRUN npm run build\n';
    const [violation] = await rule('CopyBeforeDependencyInstall', text);
    expect(violation).toMatch(/^CopyBeforeDependencyInstall:3 COPY of the whole context comes before the dependency install at line 4: /);
    expect(
      await rule('CopyBeforeDependencyInstall', 'FROM node:22\nCOPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\n'),
    ).toEqual([]);
  });

  test('RemoteArchiveAdd', async () => {
    expect(
      await rule('RemoteArchiveAdd', 'FROM alpine\nADD https://example.com/tool-1.2.tar.gz /tmp/\nADD https://example.com/tool.sh /\n'),
    ).toEqual([
      'RemoteArchiveAdd:2 ADD keeps https://example.com/tool-1.2.tar.gz as one file (a URL is never unpacked): unpacking it in a later RUN leaves both in the image; download, unpack and delete it in one RUN instead',
    ]);
  });
});

describe('options and errors', () => {
  const text = '# check=skip=MaintainerDeprecated,JSONArgsRecommended\nFROM alpine as base\nMAINTAINER me\nCMD run\n';

  test('# check=skip leaves those rules out; error=true makes the rest fail the check', async () => {
    expect((await found(text)).map((line) => line.split(' ')[0])).toEqual(['FromAsCasing:2']);
    const strict = await check(text.replace('skip=', 'error=true;skip='));
    expect(strict.failed).toBe(true);
    expect((await check(text)).failed).toBe(false);
  });

  test('a # check= comment right above a FROM adds its skips for that stage', async () => {
    const text =
      'FROM alpine as a\nMAINTAINER me\n# the final stage\n# check=skip=MaintainerDeprecated,FromAsCasing\nFROM alpine as b\nMAINTAINER me\n';
    expect((await found(text)).map((line) => line.split(' ')[0])).toEqual(['FromAsCasing:1', 'MaintainerDeprecated:2']);
    const apart = text.replace('# check=', '\n# check=').replace('# the final stage\n', '');
    expect((await found(apart)).map((line) => line.split(' ')[0])).toEqual(['FromAsCasing:1', 'MaintainerDeprecated:2']);
  });

  test('BUILDKIT_DOCKERFILE_CHECK replaces the directive', async () => {
    const result = await check(text, { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=FromAsCasing;error=true' } });
    expect(result.violations.map((v) => v.rule.name)).toEqual(['MaintainerDeprecated', 'JSONArgsRecommended']);
    expect(result.failed).toBe(true);
    expect((await check(text, { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip' } })).errors).toEqual([
      '--build-arg BUILDKIT_DOCKERFILE_CHECK: invalid check option "skip"',
    ]);
    expect((await check('# check=error=maybe\nFROM alpine\n')).errors).toEqual([
      'Dockerfile:1: failed to parse check option "error=maybe": want true or false',
    ]);
  });

  test('what tsbuild could not build is an error with its line; the rules still run', async () => {
    const cases: [string, string][] = [
      ['FROM alpine\nRUN\n', 'Dockerfile:2: RUN requires at least one argument'],
      ['FROM alpine\nCOPY --from=3 /a /b\n', 'Dockerfile:2: invalid from flag value 3: index out of bounds'],
      [
        'FROM alpine\nCOPY --from=later /a /b\nFROM alpine AS later\n',
        'Dockerfile:2: stage "later" is used before it is defined (or by itself): a stage can use only the stages above it',
      ],
      ['ARG BASE\nFROM ${BASE}\n', 'Dockerfile:2: base name (${BASE}) should not be blank'],
      [
        'FROM --platform=linux/s390x alpine\nRUN true\n',
        'Dockerfile:2: RUN for linux/s390x needs QEMU user emulation, and no binfmt_misc handler',
      ],
      ['FROM Alpine:3\n', 'Dockerfile:1: base image "Alpine:3": invalid reference format'],
    ];
    for (const [dockerfile, error] of cases) {
      const result = await check(dockerfile);
      expect(result.failed).toBe(true);
      expect(result.errors).toHaveLength(1);
      expect(result.errors[0]).toContain(error);
    }
    const stillLinted = await check('from alpine AS x\nrun\n');
    expect(stillLinted.violations.map((v) => v.rule.name)).toEqual(['FromAsCasing']);
    await expect(check('FROM alpine\n', { target: 'nope' })).resolves.toMatchObject({ errors: ['target stage "nope" could not be found'] });
  });

  test('what a build would warn about is told too, without failing the check', async () => {
    const result = await check('# syntax=example.com/frontend:1\nFROM alpine\n');
    expect(result.notes).toEqual([
      expect.stringMatching(/^Dockerfile:1: # syntax=example.com\/frontend:1: tsbuild does not run Dockerfile frontend images/),
    ]);
    expect(result.failed).toBe(false);
  });

  test('a stage chosen through an ARG is resolved, and its references with it', async () => {
    const text = 'ARG SRC=prebuilt\nFROM scratch AS prebuilt\nFROM scratch AS built\nFROM ${SRC} AS final\nCOPY --from=built /a /b\n';
    const result = await check(text);
    expect(result.errors).toEqual([]);
    expect((await check(text, { buildArgs: { SRC: 'built' } })).errors).toEqual([]);
  });
});
