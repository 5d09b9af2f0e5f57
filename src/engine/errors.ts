// The one base of every error a person can cause or meet (a bad file, link, flag or request, a
// missing browser feature): a sentence they understand as the message, and what to do as the hint.
// Callers show `message` and `hint`; `name` tells the kind apart (set explicitly: bundlers rename classes).

export class MoeError extends Error {
  readonly hint: string;
  constructor(message: string, hint: string) {
    super(message);
    this.name = 'MoeError';
    this.hint = hint;
  }
}

/** True for any of the project's person-readable errors. */
export function isMoeError(err: unknown): err is MoeError {
  return err instanceof MoeError;
}
