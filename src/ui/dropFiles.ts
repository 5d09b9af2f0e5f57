// Files from a drop: a dropped checkpoint folder is read through the File and Directory Entries API
// (the only way a page can list a dropped folder); dropped files are taken as they are.

/** The name a set of picked files goes by: their folder's, else config.json's neighbourhood. */
export function folderName(files: File[]): string {
  const relative = files.find((f) => f.webkitRelativePath)?.webkitRelativePath;
  if (relative?.includes('/')) return relative.split('/')[0];
  return files.length === 1 ? files[0].name : `${files.length} files`;
}

function readAll(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  // readEntries answers in batches (100 in Chromium) until it answers an empty one.
  return new Promise((resolve, reject) => {
    const out: FileSystemEntry[] = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) return resolve(out);
        out.push(...batch);
        next();
      }, reject);
    next();
  });
}

const fileOf = (entry: FileSystemFileEntry) => new Promise<File>((resolve, reject) => entry.file(resolve, reject));

export async function filesFromDrop(data: DataTransfer): Promise<{ name: string; files: File[] }> {
  const entries = [...data.items]
    .map((item) => item.webkitGetAsEntry?.() ?? null)
    .filter((e): e is FileSystemEntry => e !== null);
  const folder = entries.length === 1 && entries[0].isDirectory ? (entries[0] as FileSystemDirectoryEntry) : null;
  if (folder) {
    const children = await readAll(folder.createReader());
    const files = await Promise.all(children.filter((e) => e.isFile).map((e) => fileOf(e as FileSystemFileEntry)));
    return { name: folder.name, files };
  }
  const files = [...data.files];
  return { name: folderName(files), files };
}
