// What each Dockerfile instruction means (src/builder/instructions.ts), in-process: a stage's
// variables and an instruction in, the next variables, the history entry and the filesystem work
// out. No store, no mounts, no root. The expected values are Docker's (BuildKit's where the two
// builders differ), as the system tests check them against real Docker builds.
import { DockerfileError } from '../../../src/errors.js';
import { DEFAULT_PATH, type ImageConfig } from '../../../src/image/config.js';
import { parseDockerfile } from '../../../src/parse/index.js';
import {
  dispatch,
  HISTORY_COMMENT,
  startStage,
  type BuildScope,
  type CopyWork,
  type Outcome,
  type RunWork,
  type StageVars,
} from '../../../src/builder/instructions.js';

const NOW = '2026-01-02T03:04:05Z';

function scratch(): ImageConfig {
  return { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
}

function scope(over: Partial<BuildScope> = {}): BuildScope {
  return { escapeChar: '\\', buildArgs: {}, globalArgs: new Map(), now: () => NOW, ...over };
}

/** Runs the instructions of `lines` (after a FROM) on `base`; returns every outcome and the final variables. */
function stage(lines: string, opts: { base?: ImageConfig; scope?: Partial<BuildScope> } = {}): { vars: StageVars; outcomes: Outcome[] } {
  const plan = parseDockerfile(`FROM base\n${lines}\n`);
  let { vars } = startStage(opts.base ?? scratch());
  const outcomes: Outcome[] = [];
  for (const step of plan.stages[0]!.steps) {
    const o = dispatch(vars, step, scope(opts.scope));
    outcomes.push(o);
    vars = o.vars;
  }
  return { vars, outcomes };
}

function last(lines: string, opts: Parameters<typeof stage>[1] = {}): Outcome {
  return stage(lines, opts).outcomes.at(-1)!;
}

/** The RUN or COPY work of an outcome, failing the test if it asks for something else. */
function runWork(o: Outcome): RunWork {
  if (o.work?.kind !== 'RUN') throw new Error(`expected RUN work, got ${JSON.stringify(o.work)}`);
  return o.work;
}

function copyWork(o: Outcome): CopyWork {
  if (o.work?.kind !== 'COPY' && o.work?.kind !== 'ADD') throw new Error(`expected COPY work, got ${JSON.stringify(o.work)}`);
  return o.work;
}

function env(vars: StageVars): string[] {
  return vars.config.config.Env ?? [];
}

describe('FROM', () => {
  test('a base without PATH gets Docker’s default after its own variables', () => {
    const base = { ...scratch(), config: { Env: ['A=1'] } };
    expect(env(startStage(base).vars)).toEqual(['A=1', `PATH=${DEFAULT_PATH}`]);
  });

  test('a base PATH is kept as it is', () => {
    expect(env(startStage({ ...scratch(), config: { Env: ['PATH=/x'] } }).vars)).toEqual(['PATH=/x']);
  });

  test('the base’s ONBUILD triggers are handed out to run, and not inherited', () => {
    const { vars, triggers } = startStage({ ...scratch(), config: { OnBuild: ['RUN a', 'COPY b /b'] } });
    expect(triggers).toEqual(['RUN a', 'COPY b /b']);
    expect(vars.config.config.OnBuild).toBeUndefined();
  });

  test('the base config is not changed', () => {
    const base = { ...scratch(), config: { OnBuild: ['RUN a'] } };
    startStage(base);
    expect(base.config).toEqual({ OnBuild: ['RUN a'] });
  });
});

describe('metadata instructions', () => {
  test('every one writes an empty-layer history entry with BuildKit’s comment and no work', () => {
    const o = last('LABEL a=b');
    expect(o.history).toEqual({ created: NOW, created_by: 'LABEL a=b', comment: HISTORY_COMMENT, empty_layer: true });
    expect(o.work).toBeUndefined();
  });

  test('ENV replaces a variable in place, appends a new one, and one line sees the environment from before it', () => {
    const { vars, outcomes } = stage('ENV A=1 B=2\nENV A=x B=$A C=${B}c');
    expect(env(vars)).toEqual([`PATH=${DEFAULT_PATH}`, 'A=x', 'B=1', 'C=2c']);
    expect(outcomes[1]!.history.created_by).toBe('ENV A=x B=1 C=2c');
  });

  test('ARG: --build-arg wins, else the default (expanded), else the global value; only given ones count as used', () => {
    const o = stage('ARG V=one\nARG W=$V-two\nARG G\nARG U', {
      scope: { buildArgs: { U: 'given' }, globalArgs: new Map([['G', 'global']]) },
    });
    expect([...o.vars.args]).toEqual([
      ['V', 'one'],
      ['W', 'one-two'],
      ['G', 'global'],
      ['U', 'given'],
    ]);
    expect(o.outcomes.map((x) => x.usedArgs)).toEqual([[], [], [], ['U']]);
    expect(o.outcomes[1]!.history.created_by).toBe('ARG W=one-two');
  });

  test('ENV wins over an ARG of the same name in expansion', () => {
    expect(stage('ARG X=arg\nENV X=env\nLABEL l=$X').vars.config.config.Labels).toEqual({ l: 'env' });
  });

  test('WORKDIR resolves against the current one and asks for the directory; `/` asks for nothing', () => {
    const o = stage('USER app\nWORKDIR /a\nWORKDIR b/../c\nWORKDIR /');
    expect(o.outcomes[1]!.work).toEqual({ kind: 'WORKDIR', dir: '/a', user: 'app' });
    expect(o.outcomes[2]!.work).toEqual({ kind: 'WORKDIR', dir: '/a/c', user: 'app' });
    expect(o.outcomes[2]!.history.created_by).toBe('WORKDIR /a/c');
    expect(o.outcomes[3]!.work).toBeUndefined();
    expect(o.outcomes[3]!.history.empty_layer).toBe(true);
    expect(o.vars.config.config.WorkingDir).toBe('/');
  });

  test('CMD and ENTRYPOINT: shell form through SHELL, exec form as written', () => {
    const o = stage('SHELL ["/bin/bash", "-c"]\nCMD echo $HOME\nENTRYPOINT ["/e", "x"]');
    expect(o.outcomes[1]!.history.created_by).toBe('CMD ["/bin/bash","-c","echo $HOME"]');
    expect(o.vars.config.config.Entrypoint).toEqual(['/e', 'x']);
  });

  test('ENTRYPOINT drops a CMD the base set, keeps one this stage set, and `ENTRYPOINT []` unsets it', () => {
    const base = { ...scratch(), config: { Cmd: ['base'], Entrypoint: ['/old'] } };
    expect(stage('ENTRYPOINT ["/e"]', { base }).vars.config.config).toMatchObject({ Entrypoint: ['/e'] });
    expect(stage('ENTRYPOINT ["/e"]', { base }).vars.config.config.Cmd).toBeUndefined();
    expect(stage('CMD ["mine"]\nENTRYPOINT ["/e"]', { base }).vars.config.config.Cmd).toEqual(['mine']);
    const unset = stage('ENTRYPOINT []', { base }).vars.config.config;
    expect('Entrypoint' in unset).toBe(false);
  });

  test('an empty CMD is an empty list', () => {
    expect(stage('CMD []').vars.config.config.Cmd).toEqual([]);
  });

  test('USER is expanded', () => {
    expect(stage('ARG U=app\nUSER $U:grp').vars.config.config.User).toBe('app:grp');
  });

  test('EXPOSE splits after expansion and expands ranges and protocols', () => {
    const o = last('ARG P="80 8000-8001/udp"\nEXPOSE $P 53/UDP');
    expect(Object.keys(o.vars.config.config.ExposedPorts!)).toEqual(['80/tcp', '8000/udp', '8001/udp', '53/udp']);
    expect(o.history.created_by).toBe('EXPOSE 80/tcp 8000/udp 8001/udp 53/udp');
  });

  test('EXPOSE of a bad port is an error at its line', () => {
    expect(() => stage('ENV A=1\nEXPOSE 70000')).toThrow(new DockerfileError({ file: 'Dockerfile', line: 3 }, 'invalid port range: 70000'));
    expect(() => stage('EXPOSE http')).toThrow(/Dockerfile:2: invalid containerPort: http/);
  });

  test('LABEL expands keys and values and keeps the base’s labels', () => {
    const base = { ...scratch(), config: { Labels: { old: '1' } } };
    const o = last('ARG K=key\nLABEL $K="v $K" other=x', { base });
    expect(o.vars.config.config.Labels).toEqual({ old: '1', key: 'v key', other: 'x' });
    expect(o.history.created_by).toBe('LABEL key=v key other=x');
    expect(base.config.Labels).toEqual({ old: '1' });
  });

  test('VOLUME adds paths; an empty one is an error', () => {
    expect(last('VOLUME /a /b').vars.config.config.Volumes).toEqual({ '/a': {}, '/b': {} });
    expect(last('VOLUME ["/a", "/b"]').history.created_by).toBe('VOLUME [/a /b]');
    expect(() => stage('ARG E\nVOLUME ["$E"]')).toThrow(/Dockerfile:3: VOLUME specified can not be an empty string/);
  });

  test('SHELL sets the shell for later shell forms', () => {
    const o = stage('SHELL ["/bin/ash", "-eo", "pipefail", "-c"]\nRUN true');
    expect(o.outcomes[0]!.history.created_by).toBe('SHELL ["/bin/ash","-eo","pipefail","-c"]');
    expect(runWork(o.outcomes[1]!).argv).toEqual(['/bin/ash', '-eo', 'pipefail', '-c', 'true']);
  });

  test('STOPSIGNAL takes names, SIG names and numbers, and refuses others', () => {
    expect(last('STOPSIGNAL SIGTERM').vars.config.config.StopSignal).toBe('SIGTERM');
    expect(last('STOPSIGNAL 9').vars.config.config.StopSignal).toBe('9');
    expect(last('STOPSIGNAL RTMIN+3').vars.config.config.StopSignal).toBe('RTMIN+3');
    expect(() => stage('STOPSIGNAL SIGNOPE')).toThrow(/Dockerfile:2: invalid signal: SIGNOPE/);
    expect(() => stage('STOPSIGNAL 65')).toThrow(/invalid signal: 65/);
  });

  test('HEALTHCHECK records its test and the durations given', () => {
    const o = last('HEALTHCHECK --interval=5s --retries=2 CMD curl -f localhost');
    expect(o.vars.config.config.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'curl -f localhost'], Interval: 5_000_000_000, Retries: 2 });
    expect(last('HEALTHCHECK NONE').vars.config.config.Healthcheck).toEqual({ Test: ['NONE'] });
  });

  test('ONBUILD appends the trigger as written', () => {
    const o = stage('ONBUILD RUN a\nONBUILD COPY . /src');
    expect(o.vars.config.config.OnBuild).toEqual(['RUN a', 'COPY . /src']);
    expect(o.outcomes[1]!.history.created_by).toBe('ONBUILD COPY . /src');
  });

  test('MAINTAINER sets the author', () => {
    const o = last('MAINTAINER Jane <j@example.com>');
    expect(o.vars.config.author).toBe('Jane <j@example.com>');
    expect(o.history.created_by).toBe('MAINTAINER Jane <j@example.com>');
  });

  test('a failed expansion is an error at the instruction’s line', () => {
    expect(() => stage('LABEL a=b\nLABEL x=${MISSING:?required}')).toThrow(/^Dockerfile:3: .*MISSING: required/);
  });
});

describe('RUN', () => {
  test('shell form runs through the stage’s SHELL; the image must have it', () => {
    const o = last('RUN echo $HOME');
    expect(o.work).toEqual({
      kind: 'RUN',
      argv: ['/bin/sh', '-c', 'echo $HOME'],
      env: [`PATH=${DEFAULT_PATH}`],
      network: 'host',
      shell: '/bin/sh',
      user: '',
      cwd: '/',
    });
    expect(o.history).toEqual({ created: NOW, created_by: 'RUN /bin/sh -c echo $HOME # buildkit', comment: HISTORY_COMMENT });
    expect(o.vars).toEqual(stage('').vars);
  });

  test('exec form runs as written, with no shell to check', () => {
    const w = runWork(last('RUN ["/bin/true", "$X"]'));
    expect(w.argv).toEqual(['/bin/true', '$X']);
    expect(w.shell).toBeUndefined();
  });

  test('the ARGs in scope go into the environment and into created_by, as BuildKit writes them', () => {
    const o = last('ARG A=1 B\nENV B=env\nRUN true', { scope: { buildArgs: { B: 'arg' } } });
    expect(o.history.created_by).toBe('RUN |2 A=1 B=arg /bin/sh -c true # buildkit');
    expect(runWork(o).env).toEqual([`PATH=${DEFAULT_PATH}`, 'B=env', 'A=1']);
  });

  test('proxy build args reach the process without an ARG, and are not recorded', () => {
    const o = last('RUN true', { scope: { buildArgs: { HTTP_PROXY: 'http://proxy:3128', OTHER: 'x' } } });
    expect(runWork(o).env).toEqual([`PATH=${DEFAULT_PATH}`, 'HTTP_PROXY=http://proxy:3128']);
    expect(o.history.created_by).toBe('RUN /bin/sh -c true # buildkit');
  });

  test('USER and WORKDIR in force are where it runs', () => {
    expect(last('USER nobody\nWORKDIR /srv\nRUN true').work).toMatchObject({ user: 'nobody', cwd: '/srv' });
  });

  test('--network as the parser checked it: default, host or none; the host’s when absent', () => {
    expect(last('RUN --network=none true').work).toMatchObject({ network: 'none' });
    expect(last('RUN --network=default true').work).toMatchObject({ network: 'default' });
    expect(last('RUN true').work).toMatchObject({ network: 'host' });
  });

  test('a heredoc script starting with #! is mounted at /dev/pipes and run from there', () => {
    const o = last('RUN <<EOF\n#!/bin/sh\necho hi\nEOF');
    const w = runWork(o);
    expect(w.argv).toEqual(['/bin/sh', '-c', '/dev/pipes/EOF']);
    expect(w.pipes?.map((p) => [p.name, p.content.toString()])).toEqual([['EOF', '#!/bin/sh\necho hi\n']]);
  });
});

describe('COPY and ADD', () => {
  test('words are expanded with the stage’s variables; the work says what to copy where', () => {
    const o = last('ARG D=/dst\nWORKDIR /w\nCOPY --chown=$U:0 --chmod=0640 a${D} b $D/', { scope: { buildArgs: { U: 'x' } } });
    expect(o.work).toEqual({
      kind: 'COPY',
      sources: ['a/dst', 'b'],
      dest: '/dst/',
      workdir: '/w',
      chown: ':0',
      chmod: expect.objectContaining({ text: '0640', octal: 0o640 }),
      inline: [],
    });
    expect(o.history.created_by).toBe('COPY --chown=$U:0 --chmod=0640 a${D} b $D/ # buildkit');
  });

  test('--chmod is octal or symbolic (BuildKit 1.14), expanded; anything else names the line', () => {
    const w = last('ARG M=u+x,g-w\nCOPY --chmod=$M a /b').work as CopyWork;
    expect(w.chmod?.text).toBe('u+x,g-w');
    expect(w.chmod?.apply(0o664, false)).toBe(0o744);
    expect(() => stage('COPY --chmod=u+q a /b')).toThrow("Dockerfile:2: invalid chmod parameter: 'u+q': invalid syntax");
    expect(() => stage('COPY --chmod=0999 a /b')).toThrow(
      "Dockerfile:2: invalid chmod parameter: '0999'. it should be octal string and between 0 and 07777",
    );
    // Empty after expansion: no --chmod, as in BuildKit.
    expect((last('ARG M\nCOPY --chmod=$M a /b').work as CopyWork).chmod).toBeUndefined();
  });

  test('--exclude and --parents are carried as written; --link only without --chmod', () => {
    const w = last('ARG P=x\nCOPY --parents --exclude=*.md --exclude=$P --link a/./b /d/').work as CopyWork;
    expect(w).toMatchObject({ sources: ['a/./b'], exclude: ['*.md', '$P'], parents: true, link: true });
    expect(last('COPY --link --chmod=0644 a /d/').work).not.toHaveProperty('link');
    expect(last('ADD --exclude=x --keep-git-dir=false https://h/r.git /d/').work).toMatchObject({ exclude: ['x'], keepGitDir: false });
  });

  test('--link with --chown takes numeric IDs and root only', () => {
    expect(last('COPY --link --chown=root:10 a /d/').work).toMatchObject({ chown: '0:10', link: true });
    expect(() => stage('COPY --link --chown=app a /d/')).toThrow(
      /^Dockerfile:2: COPY --link --chown=app: a user or group name cannot be looked up with --link/,
    );
  });

  test('ADD keeps --checksum, expanded', () => {
    expect(last('ARG S=abc\nADD --checksum=sha256:$S https://example.com/f /f').work).toMatchObject({
      kind: 'ADD',
      checksum: 'sha256:abc',
    });
  });

  test('--from names a stage or an image; heredocs are not its sources', () => {
    expect(last('COPY --from=build /a /b').work).toMatchObject({ from: 'build', sources: ['/a'], inline: [] });
  });

  test('heredoc sources become files, expanded unless the delimiter was quoted', () => {
    const o = last("ARG V=val\nCOPY <<one <<'two' /dst/\n$V\none\n$V\ntwo");
    const files = copyWork(o).inline;
    expect(files.map((f) => [f.name, f.content.toString(), f.mode])).toEqual([
      ['one', 'val\n', 0o644],
      ['two', '$V\n', 0o644],
    ]);
  });
});

test('instructions never change the variables they are given', () => {
  const { vars } = stage('ENV A=1\nLABEL l=1\nEXPOSE 80\nVOLUME /v\nARG X=1');
  const before = JSON.stringify({ ...vars, args: [...vars.args] });
  const plan = parseDockerfile(
    'FROM base\nENV A=2\nLABEL l=2\nEXPOSE 81\nVOLUME /w\nARG X=2\nUSER u\nCMD x\nENTRYPOINT y\nONBUILD RUN z\nWORKDIR /q\n',
  );
  for (const step of plan.stages[0]!.steps) dispatch(vars, step, scope());
  expect(JSON.stringify({ ...vars, args: [...vars.args] })).toBe(before);
});
