// Progress of byte transfers (pull, push, save, load), reported by the engine and rendered by
// the CLI: per layer, bytes so far against the total when it is known.

export interface TransferProgress {
  /** A transfer starts; `id` is short and stable (e.g. 12 hex digits of a digest). */
  start(id: string, what: string, total?: number): void;
  /** `bytes` more were moved. */
  advance(id: string, bytes: number): void;
  /** The transfer ended; `note` says how (`Pushed`, `Already exists`, `Loaded`...). */
  done(id: string, note: string): void;
}

/** For callers that do not want progress. */
export const NO_PROGRESS: TransferProgress = {
  start() {},
  advance() {},
  done() {},
};
