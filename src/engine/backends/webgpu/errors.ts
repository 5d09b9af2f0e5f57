// Errors a user can meet with the WebGPU backend: each has a one-sentence message and a hint.

/** No WebGPU here (no navigator.gpu, no adapter, device refused). The caller falls back to the CPU backend. */
export class WebGpuUnavailableError extends Error {
  override readonly name = 'WebGpuUnavailableError';
  constructor(
    message: string,
    readonly hint = 'The playground will run on the CPU instead; a browser with WebGPU enabled (recent Chrome or Edge) is much faster.',
  ) {
    super(message);
  }
}

/** The GPU device went away (driver reset, tab in background too long, out of memory). */
export class WebGpuDeviceLostError extends Error {
  override readonly name = 'WebGpuDeviceLostError';
  constructor(
    message: string,
    readonly hint = 'Reload the model to start a fresh GPU device, or switch to the CPU backend.',
  ) {
    super(message);
  }
}

/** A model or cache that cannot fit the device's buffer limits; refused before anything is allocated. */
export class WebGpuTooLargeError extends Error {
  override readonly name = 'WebGpuTooLargeError';
  constructor(
    message: string,
    readonly hint = 'Use a smaller model or a smaller context, or run this model on the CPU backend.',
  ) {
    super(message);
  }
}

/** A GPU validation or runtime error during a forward pass: a bug in the backend, reported in words. */
export class WebGpuInternalError extends Error {
  override readonly name = 'WebGpuInternalError';
  constructor(
    message: string,
    readonly hint = 'Please report this; the CPU backend can run the same model meanwhile.',
  ) {
    super(message);
  }
}
