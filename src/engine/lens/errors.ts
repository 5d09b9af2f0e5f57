// Errors a caller of the lenses can cause: a dense model, no text, two runs that cannot be compared.

/** A lens request that cannot be served; `message` says what, `hint` what to do instead. */
export class LensError extends Error {
  readonly hint: string;
  constructor(message: string, hint: string) {
    super(message);
    this.name = 'LensError';
    this.hint = hint;
  }
}

/** The analysis was cancelled through its AbortSignal (a newer request, a Cancel button). */
export class LensAbortedError extends Error {
  constructor() {
    super('The analysis was cancelled.');
    this.name = 'AbortError';
  }
}
