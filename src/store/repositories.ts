// image/<driver>/repositories.json: the tags, in Docker's format
//   {"Repositories": {"nginx": {"nginx:latest": "sha256:<imageID>", "nginx@sha256:<manifest>": "sha256:<imageID>"}}}
// Keys are familiar names. Rewritten whole and atomically on every change.
import { readFile } from 'node:fs/promises';
import { parseDigest, type Digest } from '../digest.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { familiarName, familiarString, parseReference, withDefaultTag, type Reference } from '../image/reference.js';

type RepositoriesJson = { Repositories: Record<string, Record<string, string>> };

export interface TaggedRef {
  /** e.g. `nginx:latest` or `app@sha256:...` */
  readonly ref: string;
  readonly repository: string;
  /** The tag, or `<none>` for a digest reference. */
  readonly tag: string;
  readonly digest?: Digest;
  readonly imageId: Digest;
}

export class Repositories {
  /**
   * `exclusive` runs a read-modify-write holding the store lock, so that two processes tagging
   * at once both keep their tag (without it, the later rename would drop the earlier's).
   */
  constructor(
    readonly file: string,
    private readonly exclusive: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn(),
  ) {}

  private async read(): Promise<RepositoriesJson> {
    try {
      const parsed = JSON.parse(await readFile(this.file, 'utf8')) as Partial<RepositoriesJson>;
      return { Repositories: parsed.Repositories ?? {} };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { Repositories: {} };
      throw err;
    }
  }

  private async write(j: RepositoriesJson): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(j));
  }

  async all(): Promise<TaggedRef[]> {
    const j = await this.read();
    const out: TaggedRef[] = [];
    for (const [repository, refs] of Object.entries(j.Repositories)) {
      for (const [ref, id] of Object.entries(refs)) {
        const r = parseReference(ref);
        out.push({ ref, repository, tag: r.tag ?? '<none>', ...(r.digest ? { digest: r.digest } : {}), imageId: parseDigest(id) });
      }
    }
    return out;
  }

  async get(ref: Reference): Promise<Digest | undefined> {
    const r = withDefaultTag(ref);
    const j = await this.read();
    const id = j.Repositories[familiarName(r)]?.[familiarString(r)];
    return id ? parseDigest(id) : undefined;
  }

  /** Points `ref` at `imageId`, replacing what it pointed at. Returns the image it pointed at before, if another. */
  async set(ref: Reference, imageId: Digest): Promise<Digest | undefined> {
    return this.exclusive(() => this.setUnlocked(ref, imageId));
  }

  private async setUnlocked(ref: Reference, imageId: Digest): Promise<Digest | undefined> {
    const r = withDefaultTag(ref);
    const j = await this.read();
    const repo = (j.Repositories[familiarName(r)] ??= {});
    const before = repo[familiarString(r)];
    // A rebuild that gives the same image leaves the file as it is (no rewrite, no fsync).
    if (before === imageId) return undefined;
    repo[familiarString(r)] = imageId;
    await this.write(j);
    return before && before !== imageId ? parseDigest(before) : undefined;
  }

  /** Removes `ref`; returns the image it pointed at, or undefined if there was no such tag. */
  async delete(ref: Reference): Promise<Digest | undefined> {
    return this.exclusive(() => this.deleteUnlocked(ref));
  }

  private async deleteUnlocked(ref: Reference): Promise<Digest | undefined> {
    const r = withDefaultTag(ref);
    const j = await this.read();
    const name = familiarName(r);
    const repo = j.Repositories[name];
    const id = repo?.[familiarString(r)];
    if (!repo || !id) return undefined;
    delete repo[familiarString(r)];
    if (Object.keys(repo).length === 0) delete j.Repositories[name];
    await this.write(j);
    return parseDigest(id);
  }

  async refsOf(imageId: Digest): Promise<TaggedRef[]> {
    return (await this.all()).filter((t) => t.imageId === imageId);
  }
}
