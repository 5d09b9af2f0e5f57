// navigator.gpu for Node: Dawn (the `webgpu` package), on Chromium's SwiftShader Vulkan driver when the
// machine has no GPU. Debian's chromium keeps its own libvulkan.so.1 in /usr/lib/chromium, where the
// dynamic loader does not look; loading it once with RTLD_GLOBAL lets Dawn find it by soname.
import { existsSync } from 'node:fs';
import { constants } from 'node:os';

const CHROMIUM_DIR = '/usr/lib/chromium';
const RTLD_NODELETE = 0x1000; // glibc; keeps the library mapped after Node's failed addon registration

export async function nodeGpu(): Promise<GPU> {
  if (!process.env.VK_ICD_FILENAMES && existsSync(`${CHROMIUM_DIR}/vk_swiftshader_icd.json`)) {
    process.env.VK_ICD_FILENAMES = `${CHROMIUM_DIR}/vk_swiftshader_icd.json`;
  }
  if (existsSync(`${CHROMIUM_DIR}/libvulkan.so.1`)) {
    try {
      const flags = constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL | RTLD_NODELETE;
      process.dlopen({ exports: {} } as NodeJS.Module, `${CHROMIUM_DIR}/libvulkan.so.1`, flags);
    } catch {
      // Always throws (it is not a Node addon), but the library is loaded by then.
    }
  }
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  return create([]);
}
