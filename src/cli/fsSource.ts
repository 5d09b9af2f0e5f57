// A checkpoint folder on disk (Node only).

import { readFile, stat } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CheckpointSource } from '../engine/types.ts';
import { CheckpointError } from '../engine/format/index.ts';

export function dirSource(dir: string): CheckpointSource {
  const folder = resolve(dir);
  let isDir: boolean;
  try {
    isDir = statSync(folder).isDirectory();
  } catch {
    throw new CheckpointError(
      dir,
      `folder ${dir} does not exist.`,
      'Check the path; it should be a folder holding config.json and the safetensors files.',
    );
  }
  if (!isDir) {
    throw new CheckpointError(
      dir,
      `${dir} is a file, not a folder.`,
      'Pass the folder that holds config.json, not a file inside it.',
    );
  }
  return {
    label: dir,
    async readFile(name) {
      const path = join(folder, name);
      try {
        const buf = await readFile(path);
        return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return null;
        if (code === 'EISDIR')
          throw new CheckpointError(name, `${path} is a folder, not a file.`, 'Remove or rename it.');
        // Reached only for rare failures (permissions, I/O); stat tells a vanished folder apart.
        await stat(folder).catch(() => {
          throw new CheckpointError(dir, `folder ${dir} does not exist any more.`, 'Check the path.');
        });
        throw new CheckpointError(
          name,
          `could not read ${path} (${(err as Error).message}).`,
          'Check the file permissions.',
        );
      }
    },
  };
}
