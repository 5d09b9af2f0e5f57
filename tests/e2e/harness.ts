// Real-browser harness: Debian's Chromium driven by playwright-core, against the built app
// (dist/) served by a small static server that also exposes the PyTorch fixtures under /fixtures/.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, statSync, createReadStream } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

const root = resolve(import.meta.dirname, '../..');
export const distDir = join(root, 'dist');
const fixturesDir = join(root, 'tests/fixtures/models');

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

function resolveFile(urlPath: string, withoutModels: boolean): string | null {
  const path = decodeURIComponent(urlPath.split('?')[0]);
  if (withoutModels && path.startsWith('/models/')) return null;
  const [base, rel] = path.startsWith('/fixtures/')
    ? [fixturesDir, path.slice('/fixtures/'.length)]
    : [distDir, path.slice(1)];
  const file = normalize(join(base, rel || 'index.html'));
  if (!file.startsWith(base)) return null; // no escaping the served folders
  if (existsSync(file) && statSync(file).isFile()) return file;
  if (existsSync(join(file, 'index.html'))) return join(file, 'index.html');
  return null;
}

/** `withoutModels`: answer 404 for /models/…, as a site with no built-in model installed would. */
export async function startServer(
  options: { withoutModels?: boolean } = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  if (!existsSync(join(distDir, 'index.html'))) {
    throw new Error('dist/ is missing: run `npx vite build` first (npm test does).');
  }
  const server: Server = createServer((request, response) => {
    const file = resolveFile(request.url ?? '/', options.withoutModels ?? false);
    if (!file) {
      response.statusCode = 404;
      response.end('not found');
      return;
    }
    response.setHeader('content-type', MIME[extname(file)] ?? 'application/octet-stream');
    response.setHeader('content-length', statSync(file).size);
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('server did not bind');
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

/**
 * Runs a command that starts a Vite server (the README's `npm start`, or `vite preview`) the way a
 * person does, and returns the URL it prints. Port 0 lets the system pick a free port, so a server
 * someone already runs on 5173 is not disturbed. close() ends the process group it started.
 */
export async function startCommand(
  command: string,
  args: string[],
): Promise<{ url: string; output: () => string; close: () => Promise<void> }> {
  const child = spawn(command, args, {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BROWSER: 'none', NO_COLOR: '1' },
  });
  let output = '';
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${command} ${args.join(' ')} printed no URL within 120 s:\n${output}`)),
      120_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      // Vite prints "➜  Local:   http://127.0.0.1:PORT/" (colours stripped by NO_COLOR).
      const match = /Local:\s+(http:\/\/[^\s]+)/.exec(output.replace(/\x1b\[[0-9;]*m/g, ''));
      if (match) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output}`));
    });
  });
  return {
    url: url.replace(/\/$/, ''),
    output: () => output,
    close: async () => {
      if (child.exitCode !== null || child.pid === undefined) return;
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      process.kill(-child.pid, 'SIGTERM');
      await exited;
    },
  };
}

/** Chromium with WebGPU on SwiftShader (webgpu: true) or with WebGPU switched off (webgpu: false). */
export async function launchBrowser(options: { webgpu: boolean }): Promise<Browser> {
  const args = [
    '--no-sandbox',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ];
  args.push(options.webgpu ? '--enable-unsafe-webgpu' : '--disable-features=WebGPU');
  return chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: true, args });
}

/** The routed text's tokens as the page shows them. */
export const tokenTexts = (page: Page) =>
  page.$$eval('[data-testid="token-text"] .token-body', (els) => els.map((e) => e.textContent ?? ''));

/** The number a metric element carries in its data-value attribute. */
export const numberAt = async (page: Page, selector: string) => Number(await page.getAttribute(selector, 'data-value'));

export interface IdleWanted {
  /** The routing label the metrics must show ("native", "threshold:0.6", "native|L1E0-"). */
  routing?: string;
  /** The model the run and the header must name (its id). */
  model?: string;
  /** Also wait for the status line to read "ready…". */
  ready?: boolean;
  /** Stop waiting when the page shows an error, and fail on it (otherwise an error waits until the timeout). */
  failOnError?: boolean;
}

/** Waits until the page has no activity and a run on screen, with the routing, model and state asked for. */
export async function waitIdle(page: Page, want: IdleWanted = {}): Promise<void> {
  await page.waitForFunction(
    (w) => {
      const text = (id: string) => document.querySelector(`[data-testid="${id}"]`)?.textContent ?? null;
      if (w.failOnError && document.querySelector('[data-testid="error"]')) return true;
      return (
        !document.querySelector('[data-testid="activity"]') &&
        text('run-source') !== null &&
        (w.routing === undefined || text('metric-routing') === w.routing) &&
        (!w.ready || text('stage')?.startsWith('ready') === true) &&
        (!w.model ||
          (text('run-source')?.startsWith(`${w.model} ·`) === true &&
            text('model')?.startsWith(`${w.model} — `) === true))
      );
    },
    want,
    { timeout: 240_000, polling: 200 },
  );
  if (want.failOnError && (await page.$('[data-testid="error"]')))
    throw new Error(`the page shows an error: ${await page.textContent('[data-testid="error"]')}`);
}
