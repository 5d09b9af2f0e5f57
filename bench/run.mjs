#!/usr/bin/env node
// `node bench/run.mjs [MODEL_DIR] [flags]`: the whole benchmark in one run (see bench/README.md).
// Same module hooks as bin/moe.mjs: TypeScript through tsx, Vite-style `?raw` imports for the WGSL kernels.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

register('../bin/raw-loader.mjs', import.meta.url);
registerTsx();
await import('./run.ts');
