// RUN --mount's value (src/parse/mounts.ts) and the RUN flags around it, in-process: every mount
// type with its options and defaults, and each error BuildKit gives for a bad one, at the
// Dockerfile's line when it holds no variable.
import { DockerfileError } from '../../../src/errors.js';
import { parseDockerfile } from '../../../src/parse/index.js';
import { parseMount, type MountOptions } from '../../../src/parse/mounts.js';
import type { RunStep } from '../../../src/parse/plan.js';

const literal = (v: string): string => v;
const read = (spec: string): MountOptions => parseMount(spec, literal);

function runOf(text: string): RunStep {
  const plan = parseDockerfile(`FROM busybox\n${text}\n`, 'Dockerfile');
  const step = plan.stages[0]!.steps[0]!;
  if (step.kind !== 'RUN') throw new Error('not a RUN');
  return step;
}

function errorOf(text: string): string {
  try {
    parseDockerfile(`FROM busybox\n${text}\n`, 'Dockerfile');
  } catch (err) {
    expect(err).toBeInstanceOf(DockerfileError);
    return (err as Error).message;
  }
  throw new Error('no error');
}

describe('parseMount', () => {
  test('bind is the default type, read-only unless rw', () => {
    expect(read('target=/src')).toEqual({ type: 'bind', target: '/src', readonly: true, required: false });
    expect(read('type=bind,target=/src,source=app,from=build,rw')).toEqual({
      type: 'bind',
      target: '/src',
      source: 'app',
      from: 'build',
      readonly: false,
      required: false,
    });
    expect(read('target=/src,readwrite=true').readonly).toBe(false);
    expect(read('type=bind,dst=/d,src=s').source).toBe('s');
    expect(read('type=bind,destination=/d').target).toBe('/d');
  });

  test('cache: writable by default, with id, sharing, mode, uid and gid', () => {
    expect(read('type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1000,gid=1000')).toEqual({
      type: 'cache',
      target: '/root/.cache',
      id: 'pip',
      sharing: 'locked',
      mode: 0o700,
      uid: 1000,
      gid: 1000,
      readonly: false,
      required: false,
    });
    expect(read('type=cache,target=/c,ro').readonly).toBe(true);
    expect(read('type=cache,target=/c,sharing=PRIVATE').sharing).toBe('private');
  });

  test('tmpfs sizes are go-units RAM sizes', () => {
    expect(read('type=tmpfs,target=/t,size=64m').sizeBytes).toBe(64 << 20);
    expect(read('type=tmpfs,target=/t,size=1.5GiB').sizeBytes).toBe(1.5 * 2 ** 30);
    expect(read('type=tmpfs,target=/t,size=512').sizeBytes).toBe(512);
    expect(read('type=tmpfs,target=/t').readonly).toBe(false);
  });

  test('secret and ssh: required, env, modes', () => {
    expect(read('type=secret,id=tok,env=TOKEN,required')).toEqual({
      type: 'secret',
      id: 'tok',
      env: 'TOKEN',
      required: true,
      readonly: true,
    });
    expect(read('type=secret,id=tok,required=false').required).toBe(false);
    expect(read('type=ssh')).toEqual({ type: 'ssh', readonly: true, required: false });
    expect(read('type=ssh,id=gh,mode=0666,uid=5').mode).toBe(0o666);
  });

  test('a quoted CSV field may hold a comma', () => {
    expect(read('type=bind,"target=/a,b"').target).toBe('/a,b');
  });

  test.each([
    ['type=volume,target=/v', 'unsupported mount type "volume"'],
    ['type=bind,target=/x,frob=1', "unexpected key 'frob' in 'frob=1'"],
    ['type=tmpfs,target=/t,size=lots', "invalid size: 'lots'"],
    ['type=bind,target=/b,size=1m', "unexpected key 'size' for mount type 'bind'"],
    ['type=cache,target=/c,mode=999', 'invalid value for mode: 999'],
    ['type=cache,target=/c,uid=-1', 'invalid value for uid: -1'],
    ['type=cache,target=/c,sharing=sometimes', 'unsupported sharing value "sometimes"'],
    ['type=bind,target=/b,mode=0755', 'mode not allowed for "bind" type mounts'],
    ['type=bind,target=/b,sharing=locked', 'invalid cache sharing set for bind mount'],
    ['type=secret', 'one of source, target required'],
    ['type=secret,id=a,source=b', "both source and id can't be set"],
    ['type=secret,id=a,from=build', 'secret mount should not have a from'],
    ['type=bind,target=/b,required', "unexpected key 'required' for mount type 'bind'"],
    ['type=bind,target=/b,ro=maybe', 'invalid value for ro: maybe'],
    ['type=bind,target="/b', 'bare " in non-quoted-field: type=bind,target="/b'],
    ['type=bind,"target=/b', 'extraneous or missing " in quoted-field: type=bind,"target=/b'],
  ])('%s: %s', (spec, message) => {
    expect(() => read(spec)).toThrow(message);
  });

  test('values not known yet are not checked, and count as given', () => {
    const deferred = (v: string): string | undefined => (v.includes('$') ? undefined : v);
    expect(parseMount('type=cache,target=$DIR,mode=$MODE', deferred)).toEqual({ type: 'cache', readonly: false, required: false });
    expect(() => parseMount('type=$T,target=/x', deferred)).toThrow('mount type must not use variables');
  });
});

describe('RUN flags', () => {
  test('several --mount flags, --network and --security', () => {
    const step = runOf('RUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none --security=insecure true');
    expect(step.mounts).toEqual(['type=cache,target=/c', 'type=tmpfs,target=/t']);
    expect(step.network).toBe('none');
    expect(step.security).toBe('insecure');
    expect(step.cmd).toEqual({ form: 'shell', command: 'true' });
  });

  test('a mount error is an error at its line before anything runs', () => {
    expect(errorOf('RUN --mount=type=volume,target=/v true')).toBe('Dockerfile:2: unsupported mount type "volume"');
    expect(errorOf('RUN --mount true')).toBe('Dockerfile:2: missing a value on flag: --mount');
    expect(errorOf('RUN --security=root true')).toBe('Dockerfile:2: security mode "root" is not supported; use insecure or sandbox');
  });

  test('variables in a mount are checked when the step runs', () => {
    expect(runOf('RUN --mount=type=tmpfs,target=/t,size=$SIZE true').mounts).toEqual(['type=tmpfs,target=/t,size=$SIZE']);
  });
});
