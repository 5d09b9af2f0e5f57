import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The playground is a static site: models live under public/models and are fetched at run time
// from the same origin, so `vite build` + any static server is a complete deployment.
export default defineConfig({
  plugins: [react()],
  worker: { format: 'es' },
  build: { target: 'es2022', sourcemap: true },
  server: { host: '127.0.0.1' },
  preview: { host: '127.0.0.1' },
});
