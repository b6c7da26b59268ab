// Atomic text-file writes: temp file in the same folder, fsync, rename (a crash never leaves a half-written file).
import { open, rename, unlink } from 'node:fs/promises';

/** Write `text` to `path` atomically; on failure the temp file is removed and `path` is untouched. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
}
