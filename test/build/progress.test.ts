// What a build says about its steps without a terminal: plain lines with each step's duration
// and the build's total, and `--progress rawjson`'s JSON lines, read back against the build
// they describe (steps, output, cache hits, the image, a failure).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { contextOf, ok, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

let store: { root: string; cleanup(): Promise<void> };

beforeAll(async () => {
  store = await rootWithBusybox();
});

afterAll(async () => {
  await store?.cleanup();
});

const DOCKERFILE = 'FROM busybox AS base\nENV A=b\nRUN echo one; echo two >&2; printf no-newline; sleep 0.3\nRUN echo built > /x\n';

describe('--progress plain', () => {
  test("each step's duration after it, the total at the end; cache hits say so", async () => {
    const ctx = await contextOf({ Dockerfile: DOCKERFILE });
    const first = await ok(store.root, ['build', '--progress', 'plain', ctx]);
    const lines = first.split('\n');
    // Every STEP line is answered by one `--> done in`, before the next STEP.
    const steps = lines.flatMap((l, i) => (/^STEP \d\/4: /.test(l) ? [i] : []));
    expect(steps).toHaveLength(4);
    for (const [n, at] of steps.entries()) {
      const until = steps[n + 1] ?? lines.length;
      expect(lines.slice(at, until).filter((l) => /^--> done in \d+\.\ds$/.test(l))).toHaveLength(1);
    }
    const slow = lines.slice(steps[2], steps[3]).find((l) => l.startsWith('--> done in'))!;
    expect(Number(/([\d.]+)s$/.exec(slow)![1])).toBeGreaterThanOrEqual(0.3);
    // The command's last line, without a newline of its own, is ended before the step's result.
    expect(first).toMatch(/^one\nno-newline\n--> [0-9a-f]{12} \(\d+B\)\n--> done in \d+\.\ds\nSTEP 4\/4/m);
    expect(first).toMatch(/^Built in \d+\.\ds \(4 steps, 0 cached\)\nSuccessfully built [0-9a-f]{12}\n$/m);

    const again = await ok(store.root, ['build', '--progress', 'plain', ctx]);
    expect(again.match(/^--> CACHED\n--> done in 0\.\ds$/gm)).toHaveLength(2);
    expect(again).toMatch(/^Built in \d+\.\ds \(4 steps, 2 cached\)$/m);
  });

  test('a failed step: how long it ran and the build', async () => {
    const ctx = await contextOf({ Dockerfile: 'FROM busybox\nRUN echo before; exit 3\n' });
    const r = await tsbuild(store.root, ['build', '--progress', 'plain', ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^STEP 2\/2: RUN echo before; exit 3\nbefore\n--> failed after \d+\.\ds\nBuild failed after \d+\.\ds\n$/m);
    expect(r.stderr).toMatch(/^Error: Dockerfile:2: /);
  });
});

describe('-q', () => {
  test("only the image ID while it works; a failed step's output, then the error, when it fails", async () => {
    const ctx = await contextOf({ Dockerfile: DOCKERFILE });
    const r = await tsbuild(store.root, ['build', '-q', '--no-cache', ctx]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(r.stderr).toBe('');
    const failing = await contextOf({ Dockerfile: 'FROM busybox\nRUN echo fine\nRUN echo out; echo err >&2; printf last; exit 3\n' });
    const f = await tsbuild(store.root, ['build', '-q', failing]);
    expect(f.exitCode).toBe(1);
    expect(f.stdout).toBe('');
    // The failed step's output alone (not the step before's; its streams interleave as they
    // came), ended with a newline, then the one error line.
    const [held, error] = f.stderr.split(/(?=^Error: )/m);
    expect(error).toMatch(/^Error: Dockerfile:3: RUN echo out.* exited with code 3\n$/);
    expect(held).toMatch(/\n$/);
    expect(held!.replace(/out|err|last|\n/g, '')).toBe('');
    expect([/out/, /err/, /last/].every((re) => re.test(held!))).toBe(true);
  });
});

type Event = Record<string, unknown> & { type: string };

/** The JSON lines of stderr, each one checked to be an object with a type. */
function events(stderr: string): Event[] {
  expect(stderr.endsWith('\n')).toBe(true);
  return stderr
    .slice(0, -1)
    .split('\n')
    .map((l) => {
      const e = JSON.parse(l) as Event;
      expect(typeof e.type).toBe('string');
      return e;
    });
}

/** Each step's start and end events, in order, with what came between them. */
function pairs(list: Event[]): { start: Event; end: Event; between: Event[] }[] {
  const out: { start: Event; end: Event; between: Event[] }[] = [];
  let open: { start: Event; between: Event[] } | undefined;
  for (const e of list) {
    if (e.type === 'step-start') {
      expect(open).toBeUndefined();
      open = { start: e, between: [] };
    } else if (e.type === 'step-end') {
      expect(e.step).toBe(open!.start.step);
      out.push({ ...open!, end: e });
      open = undefined;
    } else if (open) {
      open.between.push(e);
    }
  }
  return out;
}

describe('--progress rawjson', () => {
  test('JSON lines on stderr that match the build: steps, output, layers, cache hits, the image', async () => {
    const ctx = await contextOf({ Dockerfile: DOCKERFILE });
    const iid = join(await tempDir(), 'iid');
    const r = await tsbuild(store.root, ['build', '--no-cache', '--progress', 'rawjson', '--iidfile', iid, ctx]);
    expect(r.exitCode).toBe(0);
    // stdout holds the result lines only: no step and no command output.
    expect(r.stdout).toMatch(/^Successfully built [0-9a-f]{12}\n$/);
    const list = events(r.stderr);
    const steps = pairs(list);
    expect(steps.map((s) => s.start)).toEqual([
      {
        type: 'step-start',
        step: 1,
        total: 4,
        stage: 'base',
        instruction: 'FROM busybox AS base',
        file: 'Dockerfile',
        line: 1,
        time: expect.any(String),
      },
      {
        type: 'step-start',
        step: 2,
        total: 4,
        stage: 'base',
        instruction: 'ENV A=b',
        file: 'Dockerfile',
        line: 2,
        time: expect.any(String),
      },
      {
        type: 'step-start',
        step: 3,
        total: 4,
        stage: 'base',
        instruction: 'RUN echo one; echo two >&2; printf no-newline; sleep 0.3',
        file: 'Dockerfile',
        line: 3,
        time: expect.any(String),
      },
      {
        type: 'step-start',
        step: 4,
        total: 4,
        stage: 'base',
        instruction: 'RUN echo built > /x',
        file: 'Dockerfile',
        line: 4,
        time: expect.any(String),
      },
    ]);
    for (const s of steps) {
      expect(new Date(s.start.time as string).toISOString()).toBe(s.start.time);
      expect(s.end).toEqual({ type: 'step-end', step: s.start.step, durationMs: expect.any(Number), cached: false });
    }
    expect(steps[2]!.end.durationMs).toBeGreaterThanOrEqual(300);
    // One event per line of output, its newline kept; the last one without a newline comes at the step's end.
    const logs = steps[2]!.between.filter((e) => e.type === 'log');
    expect(logs).toEqual([
      { type: 'log', step: 3, stream: 'stdout', data: 'one\n' },
      { type: 'log', step: 3, stream: 'stderr', data: 'two\n' },
      { type: 'log', step: 3, stream: 'stdout', data: 'no-newline' },
    ]);
    expect(steps[3]!.between).toEqual([
      { type: 'layer', step: 4, diffId: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), size: expect.any(Number) },
    ]);
    const imageId = await readFile(iid, 'utf8');
    expect(list.at(-1)).toEqual({ type: 'build-end', durationMs: expect.any(Number), steps: 4, cached: 0, imageId });
    expect(r.stdout).toContain(imageId.slice(7, 19));

    const again = events((await tsbuild(store.root, ['build', '--progress', 'rawjson', ctx])).stderr);
    expect(pairs(again).map((s) => s.end.cached)).toEqual([false, false, true, true]);
    expect(again.filter((e) => e.type === 'log')).toEqual([]);
    expect(again.at(-1)).toMatchObject({ type: 'build-end', steps: 4, cached: 2, imageId });
  });

  test('a failure: the error with its step, then the end without an image', async () => {
    const ctx = await contextOf({ Dockerfile: 'FROM busybox\nRUN echo "bad \u001b[31m"; exit 3\n' });
    const r = await tsbuild(store.root, ['build', '--progress', 'rawjson', ctx]);
    expect(r.exitCode).toBe(1);
    // The Error line follows the JSON lines, as for every command.
    const [json, error] = [r.stderr.slice(0, r.stderr.lastIndexOf('Error: ')), r.stderr.slice(r.stderr.lastIndexOf('Error: '))];
    expect(error).toMatch(/^Error: Dockerfile:2: .* exited with code 3\n$/);
    // A terminal's escape travels as a JSON escape: the line stays JSON and the terminal is safe.
    expect(json).not.toContain('\u001b');
    const list = events(json);
    expect(list.map((e) => e.type)).toEqual(['step-start', 'step-end', 'step-start', 'log', 'error', 'build-end']);
    expect(list[3]).toEqual({ type: 'log', step: 2, stream: 'stdout', data: 'bad \u001b[31m\n' });
    expect(list[4]).toEqual({ type: 'error', step: 2, message: expect.stringMatching(/^Dockerfile:2: .*exited with code 3$/) });
    expect(list[5]).toEqual({ type: 'build-end', durationMs: expect.any(Number), steps: 1, cached: 0 });
  });

  test('a warning is an event too', async () => {
    const ctx = await contextOf({ Dockerfile: 'FROM busybox\n' });
    const r = await tsbuild(store.root, ['build', '--progress', 'rawjson', '--build-arg', 'UNUSED=1', ctx]);
    expect(r.exitCode).toBe(0);
    expect(events(r.stderr).filter((e) => e.type === 'warning')).toEqual([
      { type: 'warning', message: '[Warning] One or more build-args [UNUSED] were not consumed' },
    ]);
  });

  test('an unknown --progress mode is refused with the modes there are', async () => {
    const ctx = await contextOf({ Dockerfile: 'FROM busybox\n' });
    const r = await tsbuild(store.root, ['build', '--progress', 'fancy', ctx]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe('Error: invalid --progress fancy: use auto, plain, tty or rawjson\n');
  });
});
