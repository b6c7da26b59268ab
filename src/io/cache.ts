// Where downloaded models live: --cache-dir, else $GRAFT_CACHE_DIR, else ~/.cache/graft.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function cacheDir(override?: string): string {
  if (override) return resolve(override);
  const env = process.env.GRAFT_CACHE_DIR;
  if (env) return resolve(env);
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg ? resolve(xdg) : join(homedir(), '.cache'), 'graft');
}
