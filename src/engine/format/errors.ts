// Errors a user can cause with a bad checkpoint: a file name, one readable sentence, and a hint.
import { MoeError } from '../errors.ts';

export class CheckpointError extends MoeError {
  /** The file (or folder / URL) the problem is in, e.g. "model.safetensors" or "config.json". */
  readonly file: string;

  constructor(file: string, message: string, hint: string) {
    // Lead with the file unless the sentence already names it.
    super(message.includes(file) ? message : `${file}: ${message}`, hint);
    this.name = 'CheckpointError';
    this.file = file;
  }
}

export const HINT_REDOWNLOAD = 'The file is truncated or not a safetensors file; download it again.';
export const HINT_CONFIG = 'Check config.json against the model card, or download the checkpoint again.';
export const HINT_MISMATCH =
  'The weights do not match config.json; make sure both files come from the same checkpoint.';
