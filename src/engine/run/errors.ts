// Errors a caller of the engine can cause at run time (too long a prompt, a token the model does not know).
import { MoeError } from '../errors.ts';

/** A run request the model cannot serve; `message` says what, `hint` what to do instead. */
export class RunError extends MoeError {
  constructor(message: string, hint: string) {
    super(message, hint);
    this.name = 'RunError';
  }
}

/**
 * The checks every backend's forward() makes before touching weights, so the CPU and the WebGPU
 * backends refuse the same requests with the same words.
 */
export function checkForwardInput(
  tokens: readonly number[],
  cacheLength: number,
  cacheCapacity: number,
  vocabSize: number,
): void {
  const T = tokens.length;
  if (T === 0) throw new RunError('No tokens to run: the input is empty.', 'Give at least one token.');
  if (cacheLength + T > cacheCapacity) {
    throw new RunError(
      `The sequence would reach ${cacheLength + T} tokens, but the KV cache holds only ${cacheCapacity}.`,
      'Use a shorter prompt, fewer new tokens, or a larger cache.',
    );
  }
  for (const id of tokens) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new RunError(
        `Token id ${id} is outside this model's vocabulary of ${vocabSize} tokens.`,
        'Use the tokenizer that came with the model.',
      );
    }
  }
}
