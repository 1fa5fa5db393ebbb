// `tsbuild completion bash|zsh|fish`, tried in each real shell: the script is loaded as a user
// loads it, and a line is completed as pressing Tab would (bash: the completion function with
// COMP_LINE/COMP_WORDS; fish: `complete -C`; zsh: an interactive zsh on a pty, zsh/zpty, with
// compadd recording what it is given). The commands, flags, image names of a temporary store
// and stage names of a Dockerfile must all come back.
import { symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { requireTool } from '../helpers/dockerd.js';
import { busyboxStore, CLI, contextOf, ok, tempDir, tsbuild } from '../helpers/tsbuild.js';

/** Completes $2 in an interactive zsh with the script $1 loaded; every candidate is appended to $3. */
const ZSH_DRIVER = `
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "autoload -Uz compinit; compinit -u -D; source \${(q)1}"
zpty -w z "compadd() { local -a hits; builtin compadd -O hits \\"\\$@\\"; print -rl -- \\$hits >> \${(q)3}; builtin compadd \\"\\$@\\"; }"
zpty -w z "echo RE''ADY"
zpty -r z line '*READY*'
# Tab; once the candidates are in (input typed ahead of a running completion can cut it
# short), ^U (not ^C: a signal would reach the completion's process) and a marker.
zpty -n -w z "$2"$'\\t'
for i in {1..100}; do [[ -s $3 ]] && break; sleep 0.1; done
zpty -n -w z $'\\x15'
zpty -w z "echo DO''NE"
zpty -r z line '*DONE*'
zpty -d z
`;

describe('tsbuild completion', () => {
  const store = busyboxStore();
  let env: Record<string, string>;
  let cwd: string;
  let dir: string;

  beforeAll(async () => {
    await ok(store.root, ['tag', 'busybox', 'web:1.0']);
    // `tsbuild` on PATH, as the scripts call it; the store through TSBUILD_ROOT.
    const bin = await tempDir('tsbuild-bin-');
    await symlink(CLI, join(bin, 'tsbuild'));
    dir = await tempDir('tsbuild-completion-');
    env = { PATH: `${bin}:${process.env.PATH}`, TSBUILD_ROOT: store.root, HOME: dir, XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir };
    cwd = await contextOf({
      Dockerfile: 'FROM busybox AS builder\nRUN true\nfrom --platform=$BUILDPLATFORM builder as final\n',
      'other.Dockerfile': 'FROM busybox AS alt\n',
    });
  });

  const script = async (shell: string) => {
    const path = join(dir, `tsbuild.${shell}`);
    await writeFile(path, await ok(store.root, ['completion', shell]));
    return path;
  };

  /** What bash offers for `line` (the cursor at its end). */
  const bash = async (line: string, extraEnv: Record<string, string> = {}): Promise<string[]> => {
    const r = await execa(
      'bash',
      [
        '-c',
        `source "$1"; COMP_LINE="$2"; COMP_POINT=\${#2}; read -ra COMP_WORDS <<< "$2"; [[ $2 == *' ' ]] && COMP_WORDS+=('')
         COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); _tsbuild tsbuild "\${COMP_WORDS[COMP_CWORD]}"; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'bash',
        await script('bash'),
        line,
      ],
      { cwd, env: { ...env, ...extraEnv } },
    );
    return r.stdout.split('\n').filter((l) => l !== '');
  };

  test('bash: complete -F, and commands, image subcommands, flags, images (after a colon too), stages', async () => {
    const loaded = await execa('bash', ['-c', 'source "$1"; complete -p tsbuild', 'bash', await script('bash')], { env });
    expect(loaded.stdout).toBe('complete -F _tsbuild tsbuild');
    expect(await bash('tsbuild bui')).toEqual(['build']);
    expect((await bash('tsbuild image l')).sort()).toEqual(['list', 'load', 'ls']);
    expect(await bash('tsbuild images --no')).toEqual(['--no-trunc']);
    expect(await bash('tsbuild image ls --dig')).toEqual(['--digests']);
    expect(await bash('tsbuild build --ta')).toEqual(['--tag', '--target']);
    expect(await bash('tsbuild rmi ')).toEqual(['busybox:latest', 'web:1.0']);
    expect(await bash('tsbuild image inspect we')).toEqual(['web:1.0']);
    // bash breaks words at ':': only what follows it is replaced.
    expect(await bash('tsbuild run web:')).toEqual(['1.0']);
    expect(await bash('tsbuild run web:1.0 --')).toEqual([]); // the command's own flags, not run's
    expect(await bash('tsbuild build --target ')).toEqual(['builder', 'final']);
    expect(await bash('tsbuild build -f other.Dockerfile --target ')).toEqual(['alt']);
    expect(await bash('tsbuild images --filter dang')).toEqual(['dangling=true', 'dangling=false']);
    expect(await bash('tsbuild completion ')).toEqual(['bash', 'zsh', 'fish']);
    expect(await bash('tsbuild --storage-driver ')).toEqual(['overlay2', 'vfs', 'fuse-overlayfs']);
    // The store the line names, without TSBUILD_ROOT.
    expect(await bash(`tsbuild --root ${store.root} history w`, { TSBUILD_ROOT: '' })).toEqual(['web:1.0']);
  });

  test('fish: complete -C offers the same, with descriptions', async () => {
    await requireTool('/usr/bin/fish', 'fish');
    const path = await script('fish');
    const fish = async (line: string) => {
      const r = await execa('fish', ['--no-config', '-c', `source ${path}; complete -C ${JSON.stringify(line)}`], { cwd, env });
      return r.stdout.split('\n').filter((l) => l !== '');
    };
    expect(await fish('tsbuild bui')).toEqual(['build\tBuild an image from a Dockerfile']);
    expect(await fish('tsbuild images --dig')).toEqual(['--digests\tShow digests']);
    expect(await fish('tsbuild rmi we')).toEqual(['web:1.0']);
    expect(await fish('tsbuild build --target ')).toEqual(['builder', 'final']);
    expect(await fish('tsbuild image rm bu')).toEqual(['busybox:latest']);
  });

  test('zsh: compinit, and Tab in an interactive zsh offers the same', async () => {
    await requireTool('/usr/bin/zsh', 'zsh');
    const path = await script('zsh');
    const driver = join(dir, 'driver.zsh');
    await writeFile(driver, ZSH_DRIVER);
    let n = 0;
    const zsh = async (line: string) => {
      const out = join(dir, `zsh-out-${n++}`);
      await writeFile(out, '');
      await execa('zsh', ['-f', driver, path, line, out], { cwd, env, timeout: 30_000 });
      return [...new Set((await execa('cat', [out])).stdout.split('\n').filter((l) => l !== ''))];
    };
    expect(await zsh('tsbuild bui')).toEqual(['build']);
    expect(await zsh('tsbuild images --no')).toEqual(['--no-trunc']);
    expect(await zsh('tsbuild rmi we')).toEqual(['web:1.0']);
    expect(await zsh('tsbuild build --target ')).toEqual(['builder', 'final']);
  });

  test('an unknown shell is a usage error', async () => {
    const r = await tsbuild(store.root, ['completion', 'tcsh']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe('Error: unknown shell "tcsh": use bash, zsh, fish\n');
  });
});
