// The CLI's model store: the Hugging Face cache layout under HF_HUB_CACHE (default
// $HF_HOME/hub, HF_HOME default ~/.cache/huggingface), so Python's huggingface_hub and this command
// share downloads:
//   models--ORG--NAME/blobs/<etag>               the bytes
//   models--ORG--NAME/snapshots/<commit>/<file>  a relative symlink to the blob
//   models--ORG--NAME/refs/<revision>            the commit the revision resolved to
// A model downloaded completely also has snapshots/<commit>/.moe-complete.json (our manifest).
// Other URLs are kept the same way under moe-urls--<hash of the URL>.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rename, rm, stat, statfs, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { SourceError } from '../engine/source/errors.ts';
import { parseSourceRef } from '../engine/source/ref.ts';
import type { ModelStore, StoredFile, StoredModel } from '../engine/source/store.ts';

const MANIFEST = '.moe-complete.json';

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'huggingface');
  return join(home, 'hub');
}

/** The repo folder and revision for a source string. */
function locate(root: string, source: string): { folder: string; revision: string } {
  const ref = parseSourceRef(source);
  if (ref.kind === 'hf')
    return { folder: join(root, `models--${ref.repo.replace('/', '--')}`), revision: ref.revision };
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  return { folder: join(root, `moe-urls--${hash}`), revision: 'main' };
}

function blobName(file: StoredFile, bytes?: Uint8Array): string {
  if (file.etag && /^[A-Za-z0-9._-]{8,128}$/.test(file.etag)) return file.etag;
  if (!bytes) return '';
  return createHash('sha256').update(bytes).digest('hex');
}

function quotaError(err: unknown, file: string): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    throw new SourceError(
      'quota',
      file,
      `the disk is full: ${file} could not be stored in the model cache.`,
      'Free some space, or point HF_HUB_CACHE at a larger disk.',
    );
  }
  throw new SourceError(
    'quota',
    file,
    `${file} could not be stored in the model cache (${(err as Error).message}).`,
    'Check that HF_HUB_CACHE (or HF_HOME) is a writable folder.',
  );
}

export function hubCacheStore(root = hubCacheDir()): ModelStore {
  async function commitOf(folder: string, revision: string): Promise<string | null> {
    try {
      return (await readFile(join(folder, 'refs', revision), 'utf8')).trim() || null;
    } catch {
      return null;
    }
  }
  async function snapshot(source: string): Promise<string | null> {
    const { folder, revision } = locate(root, source);
    const commit = (await commitOf(folder, revision)) ?? revision;
    const dir = join(folder, 'snapshots', commit);
    return existsSync(join(dir, MANIFEST)) ? dir : null;
  }
  async function readManifest(dir: string): Promise<StoredModel | null> {
    try {
      return JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as StoredModel;
    } catch {
      return null;
    }
  }
  // Files of a download in progress wait in a staging folder until the commit is known.
  const staging = (source: string) => join(locate(root, source).folder, 'snapshots', '.incoming');

  return {
    async manifest(source) {
      const dir = await snapshot(source);
      return dir ? readManifest(dir) : null;
    },
    async readFile(source, file) {
      const dir = (await snapshot(source)) ?? staging(source);
      try {
        const buf = await readFile(join(dir, file.name));
        return buf.byteLength === file.size ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : null;
      } catch {
        return null;
      }
    },
    async writeFile(source, file, bytes) {
      const { folder } = locate(root, source);
      const blob = join(folder, 'blobs', blobName(file, bytes));
      const link = join(staging(source), file.name);
      try {
        await mkdir(dirname(blob), { recursive: true });
        await mkdir(dirname(link), { recursive: true });
        await writeFile(`${blob}.incomplete`, bytes);
        await rename(`${blob}.incomplete`, blob);
        await rm(link, { force: true });
        await symlink(relative(dirname(link), blob), link);
      } catch (err) {
        quotaError(err, file.name);
      }
    },
    async commit(model) {
      const { folder, revision } = locate(root, model.source);
      const commit = model.commit ?? revision;
      const from = staging(model.source);
      const dir = join(folder, 'snapshots', commit);
      await mkdir(dir, { recursive: true });
      for (const f of model.files) {
        const target = await readlink(join(from, f.name));
        const link = join(dir, f.name);
        await mkdir(dirname(link), { recursive: true });
        await rm(link, { force: true });
        await symlink(relative(dirname(link), join(dirname(join(from, f.name)), target)), link);
      }
      await rm(from, { recursive: true, force: true });
      await mkdir(join(folder, 'refs'), { recursive: true });
      await writeFile(join(folder, 'refs', revision), commit);
      await writeFile(join(dir, MANIFEST), JSON.stringify(model, null, 1));
    },
    async touch(source) {
      const dir = await snapshot(source);
      const m = dir && (await readManifest(dir));
      if (dir && m) await writeFile(join(dir, MANIFEST), JSON.stringify({ ...m, lastUsed: Date.now() }, null, 1));
    },
    async list() {
      const out: StoredModel[] = [];
      const repos = await readdir(root).catch(() => [] as string[]);
      for (const repo of repos) {
        const snaps = await readdir(join(root, repo, 'snapshots')).catch(() => [] as string[]);
        for (const s of snaps) {
          const m = await readManifest(join(root, repo, 'snapshots', s));
          if (m) out.push(m);
        }
      }
      return out.sort((a, b) => b.lastUsed - a.lastUsed);
    },
    async remove(source) {
      await rm(locate(root, source).folder, { recursive: true, force: true });
    },
    async usage() {
      let used = 0;
      const repos = await readdir(root).catch(() => [] as string[]);
      for (const repo of repos) {
        const blobs = await readdir(join(root, repo, 'blobs')).catch(() => [] as string[]);
        for (const b of blobs) used += (await stat(join(root, repo, 'blobs', b)).catch(() => ({ size: 0 }))).size;
      }
      const fs = await statfs(existsSync(root) ? root : homedir()).catch(() => null);
      return { used, available: fs ? fs.bavail * fs.bsize : undefined };
    },
  };
}
