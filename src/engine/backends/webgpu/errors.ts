// Errors a user can meet with the WebGPU backend: each has a one-sentence message and a hint.
import { MoeError } from '../../errors.ts';

/** No WebGPU here (no navigator.gpu, no adapter, device refused). The caller falls back to the CPU backend. */
export class WebGpuUnavailableError extends MoeError {
  constructor(
    message: string,
    hint = 'The playground will run on the CPU instead; a browser with WebGPU enabled (recent Chrome or Edge) is much faster.',
  ) {
    super(message, hint);
    this.name = 'WebGpuUnavailableError';
  }
}

/** The GPU device went away (driver reset, tab in background too long, out of memory). */
export class WebGpuDeviceLostError extends MoeError {
  constructor(message: string, hint = 'Reload the model to start a fresh GPU device, or switch to the CPU backend.') {
    super(message, hint);
    this.name = 'WebGpuDeviceLostError';
  }
}

/** A model or cache that cannot fit the device's buffer limits; refused before anything is allocated. */
export class WebGpuTooLargeError extends MoeError {
  constructor(
    message: string,
    hint = 'Use a smaller model or a smaller context, or run this model on the CPU backend.',
  ) {
    super(message, hint);
    this.name = 'WebGpuTooLargeError';
  }
}

/** A model this backend cannot run as it is (experts in mixed dtypes, more experts than the router kernel holds). */
export class WebGpuUnsupportedError extends MoeError {
  constructor(message: string, hint = 'Run this model on the CPU backend.') {
    super(message, hint);
    this.name = 'WebGpuUnsupportedError';
  }
}

/** A GPU validation or runtime error during a forward pass: a bug in the backend, reported in words. */
export class WebGpuInternalError extends MoeError {
  constructor(message: string, hint = 'Please report this; the CPU backend can run the same model meanwhile.') {
    super(message, hint);
    this.name = 'WebGpuInternalError';
  }
}
