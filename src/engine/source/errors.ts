// Failures of getting a checkpoint's files: each reason has its own sentence, so a person knows
// whether to log in, check the name, wait, free space or try again.

import { CheckpointError } from '../format/errors.ts';

export type SourceFailure =
  | 'invalid' // the source string itself is wrong
  | 'unauthorized' // 401/403: gated or private
  | 'not-found' // 404: no such repo, revision or file
  | 'network' // the request failed: offline, DNS, CORS refusal
  | 'server' // 5xx or another unexpected status
  | 'truncated' // fewer bytes arrived than announced, or the content is not what the file must be
  | 'quota' // the browser or disk refused to store it
  | 'too-large' // it cannot fit this device
  | 'offline-miss' // --offline / no network and not in the cache
  | 'cancelled';

export class SourceError extends CheckpointError {
  readonly reason: SourceFailure;
  constructor(reason: SourceFailure, file: string, message: string, hint: string) {
    super(file, message, hint);
    this.name = 'SourceError';
    this.reason = reason;
  }
}

export function isAbort(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'AbortError';
}

export function cancelled(file: string): SourceError {
  return new SourceError(
    'cancelled',
    file,
    'The download was cancelled.',
    'Start it again when you are ready; finished files are kept.',
  );
}
