// Hugging Face hub downloads: /<repo>/resolve/<revision>/<file> into <cache>/hub/<org>--<name>/<revision>/, resumable, verified, offline mode.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraftError } from '../runtime/errors.js';
import { cacheDir as defaultCacheDir } from './cache.js';
import { downloadFile, HttpNotFoundError, type DownloadProgress } from './http-download.js';

export const HUB_DEFAULT_URL = 'https://huggingface.co';

/** Weights: one file, or a shard index whose shards are fetched too. */
export const HUB_WEIGHTS = 'model.safetensors';
export const HUB_WEIGHTS_INDEX = 'model.safetensors.index.json';

/** Fetched when they exist (404 is fine): tokenizer files and sentence-transformers pooling settings. */
export const HUB_OPTIONAL_FILES = [
  'tokenizer.json',
  'vocab.txt',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'modules.json',
  'sentence_bert_config.json',
  '1_Pooling/config.json',
] as const;

/** Written last into a revision folder: which files a complete download holds and which the repo lacks. */
const MANIFEST = '.graft-hub.json';

export interface HubProgress extends DownloadProgress {
  file: string;
}

export type HubFileStatus = 'cached' | 'downloaded' | 'missing';

export interface HubDownloadOptions {
  /** Branch, tag or commit (default 'main'). */
  revision?: string;
  /** Exactly these files (all required); default: config.json, the safetensors weights (or index + shards) and HUB_OPTIONAL_FILES. */
  files?: string[];
  /** Hub server (default $GRAFT_HUB_URL, else https://huggingface.co). */
  baseUrl?: string;
  /** Cache root (default: cacheDir(), i.e. $GRAFT_CACHE_DIR or ~/.cache/graft). */
  cacheDir?: string;
  /** Use only the cache (default: $GRAFT_OFFLINE=1 or $HF_HUB_OFFLINE=1). */
  offline?: boolean;
  /** Bearer token for private / gated repos (default $HF_TOKEN or $HUGGING_FACE_HUB_TOKEN). */
  token?: string;
  /** Re-download even when the cache holds a complete copy. */
  force?: boolean;
  onProgress?: (p: HubProgress) => void;
  onFile?: (file: string, status: HubFileStatus) => void;
  /** Passed to downloadFile. */
  retries?: number;
  idleTimeoutMs?: number;
}

export interface HubSnapshot {
  modelId: string;
  revision: string;
  /** Local folder holding the files (use it as a model directory). */
  dir: string;
  /** Files present in `dir`. */
  files: string[];
  /** Optional files the repository does not have. */
  missing: string[];
  /** Files fetched by this call (empty on a cache hit). */
  downloaded: string[];
}

const truthy = (v: string | undefined): boolean => !!v && /^(1|true|yes|on)$/i.test(v.trim());

/** GRAFT_OFFLINE / HF_HUB_OFFLINE. */
export function hubOfflineFromEnv(): boolean {
  return truthy(process.env.GRAFT_OFFLINE) || truthy(process.env.HF_HUB_OFFLINE);
}

const REPO_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*(\/[A-Za-z0-9][A-Za-z0-9_.-]*)?$/;

/** True for `name` or `org/name` (what the hub accepts as a model id). */
export function isHubModelId(id: string): boolean {
  return REPO_RE.test(id) && !id.includes('..') && !id.endsWith('.git');
}

function checkFileName(f: string, where: string): void {
  if (!f || f.startsWith('/') || f.includes('\\') || f.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new GraftError(`${where}: refusing unsafe file name '${f}'`);
  }
}

/** `<cache>/hub/<org>--<name>/<revision>` (revision URL-encoded so `refs/pr/1` stays one folder). */
export function hubSnapshotDir(modelId: string, revision = 'main', cache?: string): string {
  return join(defaultCacheDir(cache), 'hub', modelId.replace('/', '--'), encodeURIComponent(revision));
}

/** The resolve URL of one file. */
export function hubFileUrl(modelId: string, file: string, revision = 'main', baseUrl?: string): string {
  const base = (baseUrl ?? process.env.GRAFT_HUB_URL ?? HUB_DEFAULT_URL).replace(/\/+$/, '');
  return `${base}/${modelId}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

interface Manifest {
  modelId: string;
  revision: string;
  files: string[];
  missing: string[];
}

async function readManifest(dir: string): Promise<Manifest | null> {
  try {
    const m = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Partial<Manifest>;
    if (!Array.isArray(m.files) || !Array.isArray(m.missing)) return null;
    return { modelId: String(m.modelId), revision: String(m.revision), files: m.files.map(String), missing: m.missing.map(String) };
  } catch {
    return null;
  }
}

async function writeManifest(dir: string, m: Manifest): Promise<void> {
  const tmp = join(dir, `${MANIFEST}.tmp-${process.pid}`);
  await writeFile(tmp, JSON.stringify(m, null, 1) + '\n');
  await rename(tmp, join(dir, MANIFEST));
}

/** Shard file names listed in a model.safetensors.index.json. */
async function shardsOf(indexPath: string): Promise<string[]> {
  let idx: { weight_map?: unknown };
  try {
    idx = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map?: unknown };
  } catch (e) {
    throw new GraftError(`${indexPath}: cannot read shard index (${(e as Error).message})`);
  }
  if (!idx.weight_map || typeof idx.weight_map !== 'object') throw new GraftError(`${indexPath}: no weight_map in shard index`);
  const shards = [...new Set(Object.values(idx.weight_map as Record<string, unknown>).map(String))];
  for (const s of shards) checkFileName(s, indexPath);
  return shards;
}

/**
 * Download a model repository's files from the Hugging Face hub (or a server with the same URL
 * layout) into the cache and return the local folder. A complete earlier download (manifest present,
 * files intact) is returned without any network access. Interrupted files resume from their `.part`.
 * Offline mode serves only the cache and names the first file that is missing.
 */
export async function hubDownload(modelId: string, opts: HubDownloadOptions = {}): Promise<HubSnapshot> {
  if (!isHubModelId(modelId)) throw new GraftError(`'${modelId}' is not a hub model id (expected 'org/name' or 'name')`);
  const revision = opts.revision ?? 'main';
  if (!revision || revision.includes('..')) throw new GraftError(`invalid revision '${revision}'`);
  for (const f of opts.files ?? []) checkFileName(f, modelId);
  const dir = hubSnapshotDir(modelId, revision, opts.cacheDir);
  const offline = opts.offline ?? hubOfflineFromEnv();
  const label = `${modelId}@${revision}`;
  const has = (f: string) => existsSync(join(dir, f));

  // Cache hit: the manifest of a complete download, or (explicit list) every requested file present.
  if (!opts.force) {
    const m = await readManifest(dir);
    if (m && !opts.files && m.files.every(has)) return done(m.files, m.missing, []);
    if (opts.files && opts.files.every(has)) return done(opts.files, [], []);
  }

  if (offline) return offlineSnapshot();

  const token = opts.token ?? process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const present: string[] = [];
  const missing: string[] = [];
  const downloaded: string[] = [];

  /** Fetch one file (or reuse it); false when it is optional and the server says 404. */
  const fetchOne = async (file: string, required: boolean): Promise<boolean> => {
    const dest = join(dir, file);
    if (has(file) && !opts.force) {
      present.push(file);
      opts.onFile?.(file, 'cached');
      return true;
    }
    const url = hubFileUrl(modelId, file, revision, opts.baseUrl);
    try {
      await downloadFile(url, dest, {
        headers,
        retries: opts.retries,
        idleTimeoutMs: opts.idleTimeoutMs,
        onProgress: opts.onProgress && ((p) => opts.onProgress!({ ...p, file })),
      });
    } catch (e) {
      if (e instanceof HttpNotFoundError && !required) {
        missing.push(file);
        opts.onFile?.(file, 'missing');
        return false;
      }
      if (e instanceof HttpNotFoundError) throw new GraftError(`${label}: ${file} not found on the hub (${url}); check the model id and revision`);
      throw e;
    }
    present.push(file);
    downloaded.push(file);
    opts.onFile?.(file, 'downloaded');
    return true;
  };

  await mkdir(dir, { recursive: true });
  if (opts.files) {
    for (const f of opts.files) await fetchOne(f, true);
    return done(present, missing, downloaded);
  }
  await fetchOne('config.json', true);
  if (!(await fetchOne(HUB_WEIGHTS, false))) {
    if (!(await fetchOne(HUB_WEIGHTS_INDEX, false))) {
      throw new GraftError(`${label}: the repository has neither ${HUB_WEIGHTS} nor ${HUB_WEIGHTS_INDEX} (only safetensors weights are supported, not pytorch_model.bin)`);
    }
    for (const s of await shardsOf(join(dir, HUB_WEIGHTS_INDEX))) await fetchOne(s, true);
    // The single-file name is absent because the repo is sharded: not an error.
  }
  for (const f of HUB_OPTIONAL_FILES) await fetchOne(f, false);
  const realMissing = missing.filter((f) => f !== HUB_WEIGHTS);
  await writeManifest(dir, { modelId, revision, files: present, missing: realMissing });
  return done(present, realMissing, downloaded);

  function done(files: string[], miss: string[], dl: string[]): HubSnapshot {
    return { modelId, revision, dir, files: [...files], missing: [...miss], downloaded: dl };
  }

  async function offlineSnapshot(): Promise<HubSnapshot> {
    const why = (f: string) =>
      new GraftError(`offline mode: ${f} of ${label} is not in the cache (${dir}); run once online, or unset GRAFT_OFFLINE / HF_HUB_OFFLINE`);
    if (opts.files) {
      const lack = opts.files.find((f) => !has(f));
      if (lack) throw why(lack);
      return done(opts.files, [], []);
    }
    const files: string[] = [];
    if (!has('config.json')) throw why('config.json');
    files.push('config.json');
    if (has(HUB_WEIGHTS)) files.push(HUB_WEIGHTS);
    else if (has(HUB_WEIGHTS_INDEX)) {
      files.push(HUB_WEIGHTS_INDEX);
      for (const s of await shardsOf(join(dir, HUB_WEIGHTS_INDEX))) {
        if (!has(s)) throw why(s);
        files.push(s);
      }
    } else throw why(HUB_WEIGHTS);
    for (const f of HUB_OPTIONAL_FILES) if (has(f)) files.push(f);
    return done(files, HUB_OPTIONAL_FILES.filter((f) => !has(f)), []);
  }
}
