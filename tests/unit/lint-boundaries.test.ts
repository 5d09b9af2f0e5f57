// The layering rule is enforced by Biome (biome.json, noRestrictedImports): a file that breaks it must
// fail `npm run lint`, and one that keeps it must pass. Probe files are written next to real code (the
// rule is per folder) and removed again.
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

function lint(relativePath: string, source: string): { status: number | null; output: string } {
  const path = join(root, relativePath);
  writeFileSync(path, source);
  try {
    const r = spawnSync(process.execPath, ['node_modules/@biomejs/biome/bin/biome', 'lint', relativePath], {
      cwd: root,
      encoding: 'utf8',
    });
    return { status: r.status, output: r.stdout + r.stderr };
  } finally {
    rmSync(path, { force: true });
  }
}

describe('import boundaries', () => {
  it('src/engine may not import the page, the worker, React or Node', () => {
    for (const spec of ['../ui/App.tsx', '../state/store.ts', '../worker/session.ts', 'react', 'node:fs']) {
      const r = lint('src/engine/__boundary_probe__.ts', `import * as x from '${spec}';\nexport const y = x;\n`);
      expect(r.status, spec).not.toBe(0);
      expect(r.output).toMatch(/src\/engine is plain TypeScript/);
    }
    expect(
      lint('src/engine/__boundary_probe__.ts', "import * as x from './types.ts';\nexport const y = x;\n").status,
    ).toBe(0);
  });

  it('src/worker imports only the engine; src/viz does not talk to the worker or the controller', () => {
    const worker = lint(
      'src/worker/__boundary_probe__.ts',
      "import * as x from '../state/store.ts';\nexport const y = x;\n",
    );
    expect(worker.status).not.toBe(0);
    expect(worker.output).toMatch(/src\/worker runs the engine/);
    expect(
      lint('src/worker/__boundary_probe__.ts', "import * as x from '../engine/types.ts';\nexport const y = x;\n")
        .status,
    ).toBe(0);
    const viz = lint(
      'src/viz/__boundary_probe__.ts',
      "import * as x from '../state/engineClient.ts';\nexport const y = x;\n",
    );
    expect(viz.status).not.toBe(0);
    expect(viz.output).toMatch(/src\/viz draws from data/);
  });
});
