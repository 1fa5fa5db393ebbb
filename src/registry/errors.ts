// Registry failures as one line each. The registry's own JSON error body
// (`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`) is rendered the way
// Docker's errcode package renders it: `manifest unknown: manifest unknown`.
import { TsbuildError } from '../errors.js';

export interface RegistryErrorDetail {
  readonly code: string;
  readonly message: string;
}

/**
 * Any non-success answer from a registry: `subject: detail`, e.g. `manifest app:1: manifest
 * unknown: manifest unknown`. Callers that know better words for the subject (pull, push) keep
 * the detail and replace the subject.
 */
export class RegistryError extends TsbuildError {
  constructor(
    readonly subject: string,
    readonly detail: string,
    readonly status: number | undefined,
    readonly errors: readonly RegistryErrorDetail[] = [],
    options?: { cause?: unknown },
  ) {
    super(`${subject}: ${detail}`, options);
  }

  hasCode(code: string): boolean {
    return this.errors.some((e) => e.code === code);
  }
}

/** 401/403: credentials missing, wrong, or without the rights asked for. */
export class UnauthorizedError extends RegistryError {}

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

/**
 * What an answer without an error body means: HEAD answers have no body, and a 401 or 403
 * says what the registry would have said (distribution's own wording for these codes).
 */
export function describeStatus(status: number, statusText: string): string {
  if (status === 401) return 'unauthorized: authentication required';
  if (status === 403) return 'denied: requested access to the resource is denied';
  return `${status} ${statusText}`.trim();
}
