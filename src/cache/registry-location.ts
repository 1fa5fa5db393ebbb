// A cache in a registry (`type=registry,ref=REF`): the repository of REF, the cache's manifest
// under REF's tag. Blobs the registry has in other repositories are mounted, not sent again.
import type { Digest } from '../digest.js';
import { withDefaultTag, parseReference, familiarString, type Reference } from '../image/reference.js';
import { Registry, type FetchedManifest, type Repository, type RegistryOptions } from '../registry/client.js';
import { DockerConfig } from '../registry/credentials.js';
import { RegistryError } from '../registry/errors.js';
import type { Readable } from 'node:stream';
import type { CacheLocation } from './location.js';

export class RegistryLocation implements CacheLocation {
  private constructor(
    private readonly registry: Registry,
    private readonly repo: Repository,
    readonly reference: Reference,
  ) {}

  /** Opens REF's repository, with push rights when the cache is to be written. */
  static async open(ref: string, opts: RegistryOptions & { push?: boolean }): Promise<RegistryLocation> {
    const reference = withDefaultTag(parseReference(ref));
    const credentials = opts.credentials ?? (await DockerConfig.load());
    const registry = await Registry.open(reference.domain, { ...opts, credentials });
    return new RegistryLocation(registry, registry.repository(reference.path, opts.push ? ['pull', 'push'] : ['pull']), reference);
  }

  get where(): string {
    return familiarString(this.reference);
  }

  get name(): string {
    return this.repo.name;
  }

  get domain(): string {
    return this.repo.domain;
  }

  async manifest(digest?: Digest): Promise<FetchedManifest | undefined> {
    try {
      return await this.repo.getManifest(digest ?? this.reference.digest ?? this.reference.tag!);
    } catch (err) {
      if (err instanceof RegistryError && err.status === 404) return undefined;
      throw err;
    }
  }

  async putManifest(mediaType: string, bytes: Buffer): Promise<void> {
    await this.repo.putManifest(this.reference.tag ?? 'latest', mediaType, bytes);
  }

  statBlob(digest: Digest): Promise<{ size: number } | undefined> {
    return this.repo.statBlob(digest);
  }

  mountBlob(digest: Digest, from: string): Promise<boolean> {
    return this.repo.mountBlob(digest, from);
  }

  addPullScope(path: string): void {
    this.repo.addPullScope(path);
  }

  uploadBlob(digest: Digest, size: number, open: () => Readable, onBytes?: (n: number) => void): Promise<void> {
    return this.repo.uploadBlob(digest, size, open, onBytes);
  }

  uploadStream(source: string, open: () => Promise<Readable>, onBytes?: (n: number) => void): Promise<{ digest: Digest; size: number }> {
    return this.repo.uploadStream(source, open, onBytes);
  }

  readBlob(digest: Digest, limit: number): Promise<Buffer> {
    return this.repo.readBlob(digest, limit);
  }

  downloadBlob(digest: Digest, size: number, file: string): Promise<void> {
    return this.repo.downloadBlob(digest, size, file);
  }

  close(): void {
    this.registry.close();
  }
}
