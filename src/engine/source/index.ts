// Where checkpoints come from: source strings, remote files (Range, streaming, resume), previews
// before download, a store of models kept on the device, memory estimates.

export * from './errors.ts';
export * from './ref.ts';
export * from './http.ts';
export * from './inspect.ts';
export * from './download.ts';
export * from './store.ts';
export * from './memory.ts';
