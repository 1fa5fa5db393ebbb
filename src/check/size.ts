// tsbuild's own rules, about what makes an image bigger or its rebuilds slower than they need
// to be, found from the Dockerfile's text (`tsbuild analyze` finds the leftovers after a build,
// from the layers, with the same knowledge of package caches: src/analyze/caches.ts):
//  - PackageCacheInLayer: a RUN that installs packages and leaves the manager's lists or cache
//    in its layer (no cleanup in the same RUN, no cache mount over the directory);
//  - CopyBeforeDependencyInstall: the whole context copied before the dependency install, so
//    that a change to any file runs the install again;
//  - RemoteArchiveAdd: ADD of a remote archive, which ADD keeps as one file (it never unpacks a
//    URL), so that unpacking it later leaves both in the image.
// A leftover only matters in the image that is built: the first and last rules look at the
// target stage and the stages it stands on through FROM, not at stages only copied from.
import { CACHE_KINDS, type CacheKind } from '../analyze/caches.js';
import type { BuildPlan, CopyStep, RunStep, Stage } from '../parse/index.js';
import { RULES } from './rules.js';
import type { Report } from './written.js';

interface Leftover {
  /** The kind in src/analyze/caches.ts, by its `what`. */
  readonly what: string;
  /** The command that leaves it. */
  readonly install: RegExp;
  /** What in the same RUN already keeps it out of the layer. */
  readonly cleaned: RegExp;
  /** Cache mount targets that keep it out of the layer. */
  readonly mounts: readonly string[];
}

const OPTS = '(?:\\s+-\\S+)*';

const LEFTOVERS: readonly Leftover[] = [
  {
    what: 'apt package lists',
    install: new RegExp(`\\bapt(?:-get)?${OPTS}\\s+update\\b`),
    // `apt-get dist-clean` (apt 2.7, Debian trixie) removes the lists too.
    cleaned: /\/var\/lib\/apt\/lists|\bapt(?:-get)?\s+dist-clean\b/,
    mounts: ['/var/lib/apt', '/var/lib/apt/lists'],
  },
  {
    what: 'the apk cache',
    install: new RegExp(`\\bapk${OPTS}\\s+(?:add|update|upgrade)\\b`),
    cleaned: /--no-cache\b|\/var\/cache\/apk/,
    mounts: ['/var/cache/apk'],
  },
  {
    what: 'the dnf cache',
    install: new RegExp(`\\b(?:dnf|microdnf)${OPTS}\\s+(?:install|upgrade|update)\\b`),
    cleaned: /\b(?:dnf|microdnf)\s+clean\s+all\b|\/var\/cache\/dnf/,
    mounts: ['/var/cache/dnf'],
  },
  {
    what: 'the yum cache',
    install: new RegExp(`\\byum${OPTS}\\s+(?:install|upgrade|update)\\b`),
    cleaned: /\byum\s+clean\s+all\b|\/var\/cache\/yum/,
    mounts: ['/var/cache/yum'],
  },
  {
    what: 'the pip cache',
    // A package name after `install`: `Write-Host 'Verifying pip install ...'` installs nothing.
    install: new RegExp(`\\bpip[0-9.]*${OPTS}\\s+install(?:\\s+-\\S+)*\\s+[\\w"'$-]`),
    cleaned: /--no-cache-dir\b|PIP_NO_CACHE_DIR|\bpip[0-9.]*\s+cache\s+purge\b|\.cache\/pip/,
    mounts: ['/root/.cache/pip', '/root/.cache'],
  },
  {
    what: 'the npm cache',
    install: new RegExp(`\\bnpm${OPTS}\\s+(?:ci|install|i)\\b`),
    cleaned: /\bnpm\s+cache\s+clean\b|\.npm\b/,
    mounts: ['/root/.npm'],
  },
  {
    what: 'the yarn cache',
    install: new RegExp(`\\byarn${OPTS}\\s+install\\b`),
    cleaned: /\byarn\s+cache\s+clean\b|\.cache\/yarn|\/yarn\b/,
    mounts: ['/usr/local/share/.cache/yarn', '/root/.cache/yarn'],
  },
];

/** A dependency install that reads only a few manifest files of the context. */
const DEPENDENCY_INSTALL = new RegExp(
  [
    `\\bnpm${OPTS}\\s+(?:ci|install|i)\\b`,
    `\\b(?:yarn|pnpm)${OPTS}\\s+install\\b`,
    `\\bpip[0-9.]*${OPTS}\\s+install${OPTS}\\s+-r\\b`,
    `\\b(?:poetry|pipenv|bundle|composer)${OPTS}\\s+install\\b`,
    `\\bgo\\s+mod\\s+download\\b`,
    `\\bcargo\\s+fetch\\b`,
  ].join('|'),
);

const ARCHIVE_URL = /^https?:\/\/[^?#]*\.(?:tar|tgz|tbz2?|txz|tzst|zip|tar\.(?:gz|bz2|xz|zst|lz4))(?:[?#].*)?$/i;

/** The target stage and the stages under it through FROM (`baseOf` names a stage's base stage). */
export function imageStages(target: Stage, baseOf: (index: number) => number | undefined): Set<number> {
  const chain = new Set<number>();
  for (let index: number | undefined = target.index; index !== undefined; index = baseOf(index)) chain.add(index);
  return chain;
}

export function checkSize(plan: BuildPlan, inImage: ReadonlySet<number>, report: Report): void {
  for (const stage of plan.stages) {
    let wholeContext: CopyStep | undefined;
    for (const step of stage.steps) {
      if (step.kind === 'RUN') {
        if (inImage.has(stage.index)) checkRun(step, report);
        if (wholeContext !== undefined && DEPENDENCY_INSTALL.test(runText(step))) {
          report(
            RULES.CopyBeforeDependencyInstall,
            wholeContext.loc,
            `COPY of the whole context comes before the dependency install at line ${step.loc.line}: a change to any file runs the install again; copy the dependency manifests (package.json and its lock file, requirements.txt, go.mod and go.sum, …) first, install, then copy the rest`,
          );
          wholeContext = undefined;
        }
      } else if (step.kind === 'COPY' || step.kind === 'ADD') {
        if (step.from === undefined && wholeContext === undefined && step.sources.some(isContextRoot)) wholeContext = step;
        if (step.kind === 'ADD' && inImage.has(stage.index)) checkAdd(step, report);
      }
    }
  }
}

function isContextRoot(source: string): boolean {
  return /^(?:\.\/?|\/)$/.test(source);
}

function runText(step: RunStep): string {
  const command = step.cmd.form === 'shell' ? step.cmd.command : step.cmd.argv.join(' ');
  return [command, ...(step.heredocs ?? []).map((heredoc) => heredoc.body)].join('\n');
}

/** The cache mount targets a RUN has (`--mount=type=cache,target=DIR`). */
function cacheTargets(step: RunStep): string[] {
  return (step.mounts ?? [])
    .filter((mount) => /(?:^|,)type=cache(?:,|$)/.test(mount))
    .flatMap((mount) => /(?:^|,)(?:target|dst|destination)=([^,]+)/.exec(mount)?.[1] ?? [])
    .map((target) => target.replace(/\/+$/, ''));
}

function checkRun(step: RunStep, report: Report): void {
  const text = runText(step);
  const targets = cacheTargets(step);
  for (const leftover of LEFTOVERS) {
    if (!leftover.install.test(text) || leftover.cleaned.test(text)) continue;
    if (leftover.mounts.some((dir) => targets.includes(dir))) continue;
    const kind = CACHE_KINDS.find((k) => k.what === leftover.what) as CacheKind;
    report(
      RULES.PackageCacheInLayer,
      step.loc,
      `This RUN leaves ${kind.what} in its layer: ${kind.cleanup}, or mount a cache there (--mount=type=cache,target=${leftover.mounts[0]})`,
    );
  }
}

function checkAdd(step: CopyStep, report: Report): void {
  for (const source of step.sources) {
    if (!ARCHIVE_URL.test(source)) continue;
    report(
      RULES.RemoteArchiveAdd,
      step.loc,
      `ADD keeps ${source} as one file (a URL is never unpacked): unpacking it in a later RUN leaves both in the image; download, unpack and delete it in one RUN instead`,
    );
  }
}
