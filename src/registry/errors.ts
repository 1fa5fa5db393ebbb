// Registry failures as one line each. The registry's own JSON error body
// (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`) is rendered the way
// Docker's errcode package renders it: `manifest unknown: manifest unknown`.
import { TsbuildError } from '../errors.js';

export interface RegistryErrorDetail {
  readonly code: string;
  readonly message: string;
}

/** Any non-success answer from a registry, with its HTTP status and parsed error codes. */
export class RegistryError extends TsbuildError {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly errors: readonly RegistryErrorDetail[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  hasCode(code: string): boolean {
    return this.errors.some((e) => e.code === code);
  }
}

/** 401/403: credentials missing, wrong, or without the rights asked for. */
export class UnauthorizedError extends RegistryError {}

/** A connection that could not be made or broke, after the retries. */
export class TransportError extends TsbuildError {}

/** Parses a registry error body; anything else yields no details. */
export function parseErrorBody(text: string): RegistryErrorDetail[] {
  try {
    const j = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    if (!Array.isArray(j.errors)) return [];
    return j.errors
      .filter((e) => typeof e?.code === 'string')
      .map((e) => ({ code: e.code as string, message: typeof e.message === 'string' ? e.message : '' }));
  } catch {
    return [];
  }
}

/** `MANIFEST_UNKNOWN` + `manifest unknown` → `manifest unknown: manifest unknown`, as Docker prints it. */
export function describeErrors(errors: readonly RegistryErrorDetail[]): string {
  return errors.map((e) => `${e.code.toLowerCase().replace(/_/g, ' ')}: ${e.message}`).join(', ');
}
