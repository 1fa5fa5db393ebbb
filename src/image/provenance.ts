// Which Dockerfile line made each history entry of an image tsbuild built: recorded at build
// time (the image config has no room for it) so that `analyze` can name the line that made a
// layer big. Stored by the store beside the image as a note of its own, not in the image: it
// does not travel with save or push.
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
  /**
   * The Dockerfile's host path, absolute (absent for one read from stdin, and in images built
   * before it was recorded): its `<Dockerfile>.dockerignore` is the context's ignore file then.
   */
  readonly dockerfile?: string;
  readonly steps: readonly StepOrigin[];
}

export function serializeProvenance(p: Provenance): string {
  return JSON.stringify(p);
}

/** The provenance a note holds; a damaged note is no provenance, not a failed command. */
export function parseProvenance(raw: string | undefined): Provenance | undefined {
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as Provenance;
  } catch {
    return undefined;
  }
}
