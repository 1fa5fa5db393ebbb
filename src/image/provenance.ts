// Which Dockerfile line made each history entry of an image tsbuild built: recorded at build
// time (the image config has no room for it) so that `analyze` can name the line that made a
// layer big. Stored as image metadata, not in the image: it does not travel with save or push.
import type { Digest } from '../digest.js';
import type { Store } from '../store/store.js';

export const PROVENANCE_FILE = 'tsbuild-build.json';

export interface StepOrigin {
  /** Index into the config's history. */
  readonly history: number;
  readonly file: string;
  readonly line: number;
  /** The instruction as written. */
  readonly text: string;
}

export interface Provenance {
  /** The context directory the image was built from, absolute. */
  readonly context: string;
  readonly steps: readonly StepOrigin[];
}

/** The provenance as image metadata, to be stored with the image (Store.putImage). */
export function provenanceMetadata(p: Provenance): Record<string, string> {
  return { [PROVENANCE_FILE]: JSON.stringify(p) };
}

export async function loadProvenance(store: Store, id: Digest): Promise<Provenance | undefined> {
  const raw = await store.images.getMetadata(id, PROVENANCE_FILE);
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as Provenance;
  } catch {
    return undefined; // a damaged note is no provenance, not a failed command
  }
}
