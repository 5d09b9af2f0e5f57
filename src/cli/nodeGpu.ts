// navigator.gpu for Node (the CLI, the bench and the gpu tests): Dawn, from the `webgpu` package.
// On a machine without a GPU, Dawn reaches Chromium's SwiftShader Vulkan driver through the system
// Vulkan loader (Debian's libvulkan1, installed by scripts/ensure-deps.sh).
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

let gpuPromise: Promise<GPU> | null = null;

export function nodeGpu(): Promise<GPU> {
  gpuPromise ??= (async () => {
    if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
      process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    }
    // The Vulkan loader complains on stderr without a private runtime folder; give it one.
    if (!process.env.XDG_RUNTIME_DIR) {
      const dir = join(tmpdir(), `moe-runtime-${process.getuid?.() ?? 'user'}`);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      process.env.XDG_RUNTIME_DIR = dir;
    }
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    return create([]) as GPU;
  })();
  return gpuPromise;
}
