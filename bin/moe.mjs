#!/usr/bin/env node
// The `moe` command: TypeScript sources run through tsx, with a hook for Vite-style `?raw` imports (WGSL).
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

register('./raw-loader.mjs', import.meta.url);
registerTsx();
await import('../src/cli/main.ts');
