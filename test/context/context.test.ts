import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { openContext, type BuildContext } from '../../src/context/index.js';
import { InvalidInputError } from '../../src/errors.js';
import { removeTempDirs, tempDir, writeTree, type Tree } from '../copy/tmp.js';

afterEach(removeTempDirs);

async function context(tree: Tree, opts: { dockerfile?: string } = {}): Promise<BuildContext> {
  const dir = await tempDir('tsbuild-ctx-');
  await writeTree(dir, tree);
  return openContext(dir, opts.dockerfile ? { dockerfile: join(dir, opts.dockerfile) } : {});
}

async function names(ctx: BuildContext, source: string): Promise<string[]> {
  return (await ctx.resolveSource(source)).map((s) => `${s.name}=${s.path}`);
}

/** Every path COPY . would see, depth-first. */
async function visibleTree(ctx: BuildContext): Promise<string[]> {
  const out: string[] = [];
  const [root] = await ctx.resolveSource('.');
  const walk = async (e: typeof root): Promise<void> => {
    for (const c of await ctx.readDir(e!)) {
      out.push(c.stats.isDirectory() ? `${c.path}/` : c.path);
      if (c.stats.isDirectory()) await walk(c);
    }
  };
  await walk(root);
  return out;
}

describe('BuildContext.resolveSource', () => {
  it('resolves plain sources relative to the context root, a leading / included', async () => {
    const ctx = await context({ 'a.txt': 'a', 'dir/b.txt': 'b' });
    expect(await names(ctx, 'a.txt')).toEqual(['a.txt=a.txt']);
    expect(await names(ctx, '/dir/b.txt')).toEqual(['b.txt=dir/b.txt']);
    expect(await names(ctx, './dir/')).toEqual(['dir=dir']);
    expect(await names(ctx, 'dir/./')).toEqual(['dir=dir']);
    expect(await names(ctx, '.')).toEqual(['=']);
    expect(await names(ctx, '/')).toEqual(['=']);
    expect(await names(ctx, 'dir/../a.txt')).toEqual(['a.txt=a.txt']);
  });

  it('fails for a missing source with BuildKit’s message', async () => {
    const ctx = await context({ 'a.txt': 'a' });
    await expect(ctx.resolveSource('nope')).rejects.toThrow('"/nope": not found');
    await expect(ctx.resolveSource('dir/x')).rejects.toThrow('"/dir/x": not found');
    await expect(ctx.resolveSource('a.txt/x')).rejects.toThrow('"/a.txt/x": not found');
  });

  it('matches wildcards per component, in name order; no match is not an error', async () => {
    const ctx = await context({
      'b.go': '',
      'a.go': '',
      'c.txt': '',
      'sub/x.go': '',
      'sub/deep/y.go': '',
      'src1/m.go': '',
      'src2/m.go': '',
      'src2/n.go': '',
    });
    expect(await names(ctx, '*.go')).toEqual(['a.go=a.go', 'b.go=b.go']);
    expect(await names(ctx, '**.go')).toEqual(['a.go=a.go', 'b.go=b.go']); // ** is not recursive in COPY
    expect(await names(ctx, 'src?/*.go')).toEqual(['m.go=src1/m.go', 'm.go=src2/m.go', 'n.go=src2/n.go']);
    expect(await names(ctx, 'sub/*')).toEqual(['deep=sub/deep', 'x.go=sub/x.go']);
    expect(await names(ctx, '[ab].go')).toEqual(['a.go=a.go', 'b.go=b.go']);
    expect(await names(ctx, 'nomatch*')).toEqual([]);
    expect(await names(ctx, 'a.go/*')).toEqual([]);
    await expect(ctx.resolveSource('missing/*.go')).rejects.toThrow('"/missing": not found');
  });

  it('refuses sources that climb out of the context', async () => {
    const ctx = await context({ 'a.txt': 'a' });
    await expect(ctx.resolveSource('../a.txt')).rejects.toThrow(InvalidInputError);
    await expect(ctx.resolveSource('/../../etc/passwd')).rejects.toThrow('forbidden path outside the build context: /../../etc/passwd');
    await expect(ctx.resolveSource('x/../../a.txt')).rejects.toThrow('forbidden path outside the build context');
  });

  it('follows symlinks named or matched, keeping the name written', async () => {
    const ctx = await context({
      'sub/foo': 'contents',
      link: { link: 'sub' },
      l0: { link: 'sub/foo' },
      l1: { link: 'l0' },
      abs: { link: 'sub/../sub/foo' },
    });
    expect(await names(ctx, 'link/foo')).toEqual(['foo=sub/foo']);
    expect(await names(ctx, 'l1')).toEqual(['l1=sub/foo']);
    expect(await names(ctx, 'l*')).toEqual(['l0=sub/foo', 'l1=sub/foo', 'link=sub']);
    expect(await names(ctx, 'abs')).toEqual(['abs=sub/foo']);
    const [src] = await ctx.resolveSource('link');
    expect(src!.stats.isDirectory()).toBe(true);
  });

  it('refuses symlinks that lead outside the context, relative or absolute', async () => {
    const ctx = await context({
      up: { link: '../../../etc/passwd' },
      abs: { link: '/etc/passwd' },
      'dir/up2': { link: '../..' },
    });
    await expect(ctx.resolveSource('up')).rejects.toThrow('symlink /up points outside the build context');
    await expect(ctx.resolveSource('abs')).rejects.toThrow('symlink /abs points outside the build context (to "/etc/passwd")');
    await expect(ctx.resolveSource('dir/up2/x')).rejects.toThrow(InvalidInputError);
    await expect(ctx.resolveSource('u*')).rejects.toThrow('points outside the build context');
  });

  it('fails on symlink loops', async () => {
    const ctx = await context({ a: { link: 'b' }, b: { link: 'a' } });
    await expect(ctx.resolveSource('a')).rejects.toThrow('too many levels of symbolic links');
  });
});

describe('.dockerignore', () => {
  it('hides excluded files and directories from sources, wildcards and listings', async () => {
    const ctx = await context({
      '.dockerignore': '# comment\nsecret.txt\n*.log\nbuild/\nnode_modules\n',
      'secret.txt': 's',
      'app.log': 'l',
      'keep.txt': 'k',
      'build/out': 'o',
      'node_modules/x/index.js': '',
      'src/debug.log': 'd',
    });
    await expect(ctx.resolveSource('secret.txt')).rejects.toThrow('"/secret.txt": not found');
    await expect(ctx.resolveSource('build/out')).rejects.toThrow('"/build/out": not found');
    expect(await names(ctx, '*.txt')).toEqual(['keep.txt=keep.txt']);
    // Patterns are rooted at the context: *.log does not exclude src/debug.log.
    expect(await visibleTree(ctx)).toEqual(['.dockerignore', 'keep.txt', 'src/', 'src/debug.log']);
  });

  it('re-includes `!` exceptions, even inside an excluded directory', async () => {
    const ctx = await context({
      '.dockerignore': 'docs\n!docs/README.md\n*.md\n!keep.md\nlogs/*\n',
      'docs/README.md': 'r',
      'docs/other.md': 'o',
      'docs/img/x.png': '',
      'a.md': '',
      'keep.md': '',
      'logs/1.txt': '',
      Dockerfile: 'FROM x',
    });
    // *.md is rooted at the context: it excludes a.md (keep.md is re-included), not docs/README.md.
    expect(await visibleTree(ctx)).toEqual(['.dockerignore', 'Dockerfile', 'docs/', 'docs/README.md', 'keep.md', 'logs/']);
    const ctx2 = await context({
      '.dockerignore': 'docs\n!docs/README.md\n',
      'docs/README.md': 'r',
      'docs/other.md': 'o',
      'docs/img/x.png': '',
    });
    expect(await visibleTree(ctx2)).toEqual(['.dockerignore', 'docs/', 'docs/README.md']);
    expect(await names(ctx2, 'docs')).toEqual(['docs=docs']);
    // Last matching rule wins.
    const ctx3 = await context({ '.dockerignore': '!a.md\n*.md\n', 'a.md': '', b: '' });
    expect(await visibleTree(ctx3)).toEqual(['.dockerignore', 'b']);
    await expect(ctx2.resolveSource('docs/other.md')).rejects.toThrow('not found');
  });

  it('applies to the Dockerfile and .dockerignore themselves, like any file', async () => {
    const ctx = await context({ '.dockerignore': 'Dockerfile\n.dockerignore\n', Dockerfile: 'FROM x', a: '' });
    expect(await visibleTree(ctx)).toEqual(['a']);
    await expect(ctx.resolveSource('Dockerfile')).rejects.toThrow('not found');
  });

  it('is case-sensitive, as Docker is on Linux', async () => {
    const ctx = await context({ '.dockerignore': 'secret\n', Secret: 'S', secret: 's' });
    expect(await visibleTree(ctx)).toEqual(['.dockerignore', 'Secret']);
  });

  it('hides excluded entries on the way through a symlink too', async () => {
    const ctx = await context({ '.dockerignore': 'private\n', 'private/key': 'k', link: { link: 'private' } });
    await expect(ctx.resolveSource('link/key')).rejects.toThrow('"/link/key": not found');
  });

  it('prefers <Dockerfile>.dockerignore beside the Dockerfile', async () => {
    const ctx = await context(
      { '.dockerignore': 'a\n', 'df/app.Dockerfile': 'FROM x', 'df/app.Dockerfile.dockerignore': 'b\n', a: '', b: '' },
      { dockerfile: 'df/app.Dockerfile' },
    );
    expect(ctx.ignore.file).toMatch(/app\.Dockerfile\.dockerignore$/);
    expect(await names(ctx, 'a')).toEqual(['a=a']);
    await expect(ctx.resolveSource('b')).rejects.toThrow('not found');
  });

  it('strips a byte order mark', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, '.dockerignore'), '\uFEFFsecret\n');
    await writeFile(join(dir, 'secret'), 's');
    const ctx = await openContext(dir);
    await expect(ctx.resolveSource('secret')).rejects.toThrow('not found');
  });
});

describe('openContext', () => {
  it('refuses what is not a directory', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'f'), '');
    await expect(openContext(join(dir, 'f'))).rejects.toThrow('is not a directory');
    await expect(openContext(join(dir, 'missing'))).rejects.toThrow(InvalidInputError);
  });
});
