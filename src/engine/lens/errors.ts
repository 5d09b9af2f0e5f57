// Errors a caller of the lenses can cause: a dense model, no text, two runs that cannot be compared.
import { MoeError } from '../errors.ts';

/** A lens request that cannot be served; `message` says what, `hint` what to do instead. */
export class LensError extends MoeError {
  constructor(message: string, hint: string) {
    super(message, hint);
    this.name = 'LensError';
  }
}

/** The analysis was cancelled through its AbortSignal (a newer request, a Cancel button). */
export class LensAbortedError extends Error {
  constructor() {
    super('The analysis was cancelled.');
    this.name = 'AbortError';
  }
}
