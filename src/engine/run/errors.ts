// Errors a caller of the engine can cause at run time (too long a prompt, a token the model does not know).

/** A run request the model cannot serve; `message` says what, `hint` what to do instead. */
export class RunError extends Error {
  readonly hint: string;
  constructor(message: string, hint: string) {
    super(message);
    this.name = 'RunError';
    this.hint = hint;
  }
}
