// Where RUN --mount=type=secret's bytes come from (src/builder/secrets.ts): files and environment
// variables read when a step asks, BuildKit's 500 KiB limit, and errors that name the secret but
// never hold its value. Real files in a temp dir; any user.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError } from '../../../src/errors.js';
import { MAX_SECRET_SIZE, Secrets, parseSecretFlag } from '../../../src/builder/secrets.js';
import { tempDir } from '../../helpers/tsbuild.js';

const VALUE = 's3cr3t-value-that-must-not-leak';

/** The error `p` rejects with; fails the test if it resolves. */
async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('Secrets', () => {
  test('a file source is read when asked, each time anew', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'token'), VALUE);
    const secrets = new Secrets([parseSecretFlag(`id=tok,src=${join(dir, 'token')}`)]);
    expect(secrets.has('tok')).toBe(true);
    expect(secrets.has('other')).toBe(false);
    await secrets.check();
    expect((await secrets.read('tok'))!.toString()).toBe(VALUE);
    await writeFile(join(dir, 'token'), 'rotated');
    expect((await secrets.read('tok'))!.toString()).toBe('rotated');
    expect(await secrets.read('other')).toBeUndefined();
  });

  test('a relative src is relative to the given directory; binary content comes back intact', async () => {
    const dir = await tempDir();
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13]);
    await writeFile(join(dir, 'bin'), bytes);
    const secrets = new Secrets([parseSecretFlag('id=b,src=bin')], { cwd: dir });
    expect(await secrets.read('b')).toEqual(bytes);
  });

  test('an env source is read when asked, from the environment given', async () => {
    const env: NodeJS.ProcessEnv = { API_KEY: VALUE };
    const secrets = new Secrets([parseSecretFlag('id=tok,env=API_KEY'), parseSecretFlag('type=env,id=API_KEY')], { env });
    await secrets.check();
    expect((await secrets.read('tok'))!.toString()).toBe(VALUE);
    expect((await secrets.read('API_KEY'))!.toString()).toBe(VALUE);
    env.API_KEY = 'changed';
    expect((await secrets.read('tok'))!.toString()).toBe('changed');
    // An empty value is a value (the variable is set).
    env.API_KEY = '';
    expect((await secrets.read('tok'))!.length).toBe(0);
  });

  test('an ID alone reads the variable of that name if set, else the file of that name (buildx)', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'FROM_FILE'), 'file bytes');
    const secrets = new Secrets([parseSecretFlag('id=FROM_ENV'), parseSecretFlag('id=FROM_FILE')], {
      env: { FROM_ENV: 'env bytes', PATH: '/bin' },
      cwd: dir,
    });
    expect((await secrets.read('FROM_ENV'))!.toString()).toBe('env bytes');
    expect((await secrets.read('FROM_FILE'))!.toString()).toBe('file bytes');
  });

  test('a later flag with the same ID wins, as in BuildKit', async () => {
    const secrets = new Secrets([parseSecretFlag('id=a,env=ONE'), parseSecretFlag('id=a,env=TWO')], { env: { ONE: '1', TWO: '2' } });
    expect((await secrets.read('a'))!.toString()).toBe('2');
  });

  test('a missing file, a directory and an unset variable are errors naming the ID', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'adir'));
    const missing = new Secrets([parseSecretFlag(`id=gone,src=${join(dir, 'nope')}`)]);
    for (const f of [() => missing.check(), () => missing.read('gone')]) {
      const err = await errorOf(f());
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err.message).toBe(`secret "gone": cannot read ${join(dir, 'nope')}: no such file`);
    }
    const asDir = new Secrets([parseSecretFlag(`id=d,src=${join(dir, 'adir')}`)]);
    expect((await errorOf(asDir.check())).message).toBe(`secret "d": ${join(dir, 'adir')} is a directory, not a file`);
    expect((await errorOf(asDir.read('d'))).message).toBe(`secret "d": cannot read ${join(dir, 'adir')}: it is a directory`);
    const unset = new Secrets([parseSecretFlag('id=tok,env=NOT_SET')], { env: {} });
    for (const f of [() => unset.check(), () => unset.read('tok')]) {
      expect((await errorOf(f())).message).toBe('secret "tok": environment variable NOT_SET is not set');
    }
    const neither = new Secrets([parseSecretFlag('id=idonly')], { env: {}, cwd: dir });
    expect((await errorOf(neither.check())).message).toBe(
      `secret "idonly": no environment variable idonly is set and there is no file ${join(dir, 'idonly')}`,
    );
  });

  test('500 KiB is the limit, for files and variables', async () => {
    const dir = await tempDir();
    const atLimit = Buffer.alloc(MAX_SECRET_SIZE, 'x');
    const over = `${VALUE}${'y'.repeat(MAX_SECRET_SIZE)}`;
    await writeFile(join(dir, 'ok'), atLimit);
    await writeFile(join(dir, 'big'), over);
    const env = { BIG: over, OK: atLimit.toString() };
    const secrets = new Secrets(
      [
        parseSecretFlag(`id=okfile,src=${join(dir, 'ok')}`),
        parseSecretFlag(`id=bigfile,src=${join(dir, 'big')}`),
        parseSecretFlag('id=okenv,env=OK'),
        parseSecretFlag('id=bigenv,env=BIG'),
      ],
      { env },
    );
    // Buffer.equals: jest's toEqual walks half a million bytes one by one.
    expect((await secrets.read('okfile'))!.equals(atLimit)).toBe(true);
    expect((await secrets.read('okenv'))!.length).toBe(MAX_SECRET_SIZE);
    for (const id of ['bigfile', 'bigenv']) {
      const err = await errorOf(secrets.read(id));
      expect(err.message).toBe(`secret "${id}" is larger than 500 KiB, BuildKit's limit for a secret`);
    }
    const checked = await errorOf(secrets.check());
    expect(checked.message).toMatch(/^secret "bigfile" is larger than 500 KiB/);
  });

  test('no error message holds the secret value', async () => {
    const dir = await tempDir();
    const big = VALUE.repeat(Math.ceil((MAX_SECRET_SIZE + 1) / VALUE.length));
    await writeFile(join(dir, 'big'), big);
    const env = { BIG: big };
    const failing = [
      () => new Secrets([parseSecretFlag(`id=f,src=${join(dir, 'big')}`)]).read('f'),
      () => new Secrets([parseSecretFlag(`id=f,src=${join(dir, 'big')}`)]).check(),
      () => new Secrets([parseSecretFlag('id=e,env=BIG')], { env }).read('e'),
      () => new Secrets([parseSecretFlag('id=e,env=BIG')], { env }).check(),
      () => new Secrets([parseSecretFlag('id=u,env=UNSET')], { env }).read('u'),
    ];
    for (const f of failing) {
      const err = await errorOf(f());
      expect(`${err.message}\n${err.stack ?? ''}\n${String((err as { cause?: unknown }).cause ?? '')}`).not.toContain(VALUE.slice(0, 12));
    }
  });
});
