// One resumable HTTP(S) download: `.part` file + Range requests, size and sha256 checks, atomic rename.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { GraftError } from '../runtime/errors.js';

/** The server answered 404 (callers treat optional files as absent). */
export class HttpNotFoundError extends GraftError {
  override name = 'HttpNotFoundError';
}

/** Any other HTTP failure that retrying will not fix (401/403/5xx after retries, bad redirect...). */
export class HttpError extends GraftError {
  override name = 'HttpError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The downloaded bytes do not match the size or sha256 the server announced (the file is deleted). */
export class IntegrityError extends GraftError {
  override name = 'IntegrityError';
}

export interface DownloadProgress {
  /** Bytes of the file on disk so far (including a resumed prefix). */
  done: number;
  /** Full file size when known. */
  total: number | undefined;
  /** Bytes already on disk when this transfer started (a resumed `.part`). */
  resumedFrom: number;
}

export interface DownloadOptions {
  /** Extra request headers (e.g. Authorization). Dropped on redirects to another host. */
  headers?: Record<string, string>;
  /** Expected sha256 (hex); when omitted the hub's `X-Linked-ETag` / `ETag` is used if it is a sha256. */
  sha256?: string;
  /** Called as bytes arrive (at most every chunk). */
  onProgress?: (p: DownloadProgress) => void;
  /** Retries after a dropped connection or a 5xx (each resumes from the `.part`); default 4. */
  retries?: number;
  /** Abort a request whose socket is idle this long (ms); default 30 s. */
  idleTimeoutMs?: number;
  /** Follow at most this many redirects; default 5. */
  maxRedirects?: number;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  /** True when an earlier `.part` (or a dropped transfer) was continued with a Range request. */
  resumed: boolean;
  /** True when the server ignored a Range request and the file was restarted from byte 0. */
  restarted: boolean;
  /** The sha256 that was checked (null when the server announced none and none was given). */
  verified: string | null;
}

/** What a response says about the file: from the first (redirecting) hop as well as the last. */
interface Meta {
  sha256: string | null;
  size: number | undefined;
}

const SHA256_RE = /^[0-9a-f]{64}$/;

/** An ETag value as a sha256 when it is one (`"abc…"`, `W/"abc…"`), else null. */
export function etagSha256(etag: string | string[] | undefined): string | null {
  if (typeof etag !== 'string') return null;
  const v = etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
  return SHA256_RE.test(v) ? v : null;
}

function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function intHeader(res: IncomingMessage, name: string): number | undefined {
  const v = header(res, name);
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v);
}

// Content-Range: `bytes START-END/TOTAL` or `bytes * /TOTAL` (416).
function contentRange(res: IncomingMessage): { start: number | null; total: number | undefined } | null {
  const v = header(res, 'content-range');
  if (!v) return null;
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/i.exec(v.trim());
  if (!m) return null;
  return { start: m[1] === undefined ? null : Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** GET `url` without following redirects; resolves when headers arrive. */
function get(url: URL, headers: Record<string, string>, idleMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const fn = url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : null;
    if (!fn) return reject(new HttpError(`unsupported URL scheme in ${url.href}`, 0));
    const req = fn(url, { method: 'GET', headers: { 'user-agent': 'graft', ...headers } }, resolve);
    req.setTimeout(idleMs, () => req.destroy(new Error(`no data for ${idleMs / 1000}s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Follow redirects; collect the hub's size / sha256 headers from every hop (the first carries X-Linked-*). */
async function open200(url: string, o: Required<Pick<DownloadOptions, 'headers' | 'idleTimeoutMs' | 'maxRedirects'>>, range: number, meta: Meta): Promise<IncomingMessage> {
  let u = new URL(url);
  const origin = u.host;
  for (let hop = 0; ; hop++) {
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.headers)) {
      // Never send credentials to another host (the hub redirects LFS files to a signed CDN URL).
      if (k.toLowerCase() === 'authorization' && u.host !== origin) continue;
      h[k] = v;
    }
    if (range > 0) h.range = `bytes=${range}-`;
    const res = await get(u, h, o.idleTimeoutMs);
    meta.sha256 ??= etagSha256(header(res, 'x-linked-etag'));
    meta.size ??= intHeader(res, 'x-linked-size');
    const s = res.statusCode ?? 0;
    if (s >= 300 && s < 400 && header(res, 'location')) {
      res.resume();
      if (hop >= o.maxRedirects) throw new HttpError(`${url}: more than ${o.maxRedirects} redirects`, s);
      u = new URL(header(res, 'location')!, u);
      continue;
    }
    // The final hop's ETag is the content hash for LFS files (a git sha1 for small files: ignored).
    if (s === 200 || s === 206) meta.sha256 ??= etagSha256(header(res, 'etag'));
    return res;
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Stream the body into `fh` at `pos`; rejects if the connection drops before the body ends. */
function pump(res: IncomingMessage, fh: FileHandle, pos: number, onBytes: (n: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let at = pos;
    let writing = Promise.resolve();
    let failed = false;
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      res.destroy();
      writing.then(() => reject(e), () => reject(e));
    };
    res.on('data', (chunk: Buffer) => {
      res.pause();
      const p = at;
      at += chunk.length;
      writing = writing.then(async () => {
        await fh.write(chunk, 0, chunk.length, p);
        onBytes(chunk.length);
        if (!failed) res.resume();
      });
      writing.catch(fail);
    });
    res.on('aborted', () => fail(new Error('connection closed before the end of the body')));
    res.on('error', fail);
    res.on('close', () => {
      if (!res.complete) fail(new Error('connection closed before the end of the body'));
    });
    res.on('end', () => {
      if (!res.complete) return fail(new Error('connection closed before the end of the body'));
      writing.then(resolve, reject);
    });
  });
}

const transient = (s: number): boolean => s === 408 || s === 429 || s >= 500;

/**
 * Download `url` to `dest`. Bytes go to `dest.part`; an existing `.part` is continued with a Range
 * request (a server that answers 200 instead of 206 restarts it from zero); a dropped connection is
 * retried the same way. When complete, the size is checked against Content-Length / Content-Range /
 * X-Linked-Size and the sha256 against `opts.sha256` or the hub's X-Linked-ETag / ETag (when that is
 * a 64-hex sha256); on a mismatch the `.part` is deleted and IntegrityError thrown, so nothing ever
 * appears under `dest` unless it is complete and verified. 404 throws HttpNotFoundError.
 */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const o = { headers: opts.headers ?? {}, idleTimeoutMs: opts.idleTimeoutMs ?? 30_000, maxRedirects: opts.maxRedirects ?? 5 };
  const retries = opts.retries ?? 4;
  const part = `${dest}.part`;
  const meta: Meta = { sha256: opts.sha256?.toLowerCase() ?? null, size: undefined };
  let resumed = false;
  let restarted = false;
  let lastError: Error | null = null;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    const have = await fileSize(part);
    let res: IncomingMessage;
    try {
      res = await open200(url, o, have, meta);
    } catch (e) {
      if (e instanceof GraftError) throw e;
      lastError = e as Error;
      continue;
    }
    const s = res.statusCode ?? 0;
    if (s === 404) {
      res.resume();
      throw new HttpNotFoundError(`${url}: 404 not found`);
    }
    if (s === 416) {
      // Range not satisfiable: the .part is already whole (verify below) or longer than the file (restart).
      res.resume();
      const cr = contentRange(res);
      const total = cr?.total ?? meta.size;
      if (total !== undefined && total === have) return finish(part, dest, have, meta, resumed || have > 0, restarted);
      await unlink(part).catch(() => {});
      restarted = true;
      lastError = new Error(`416 for a ${have}-byte partial file`);
      continue;
    }
    if (s !== 200 && s !== 206) {
      res.resume();
      const msg = s === 401 || s === 403 ? `${url}: HTTP ${s} (private or gated repository? pass a token or set HF_TOKEN)` : `${url}: HTTP ${s}`;
      if (transient(s) && attempt < retries) {
        lastError = new HttpError(msg, s);
        continue;
      }
      throw new HttpError(msg, s);
    }
    let start = 0;
    let total: number | undefined;
    if (s === 206) {
      const cr = contentRange(res);
      if (!cr || cr.start !== have) {
        // A partial answer we did not ask for: drop it and start over without Range.
        res.resume();
        await unlink(part).catch(() => {});
        restarted = true;
        lastError = new Error(`unexpected Content-Range ${header(res, 'content-range') ?? '(none)'} for offset ${have}`);
        continue;
      }
      start = have;
      total = cr.total;
      resumed = true;
    } else {
      if (have > 0) restarted = true; // server ignored Range: rewrite from zero
      const len = intHeader(res, 'content-length');
      total = len;
    }
    total ??= meta.size;
    if (meta.size !== undefined && total !== undefined && meta.size !== total) {
      res.resume();
      await unlink(part).catch(() => {});
      throw new IntegrityError(`${url}: server announced ${meta.size} bytes (X-Linked-Size) but sends ${total}`);
    }
    meta.size ??= total;
    await mkdir(dirname(dest), { recursive: true }); // only now: a 404 leaves no empty folder behind
    const fh = await open(part, start > 0 ? 'r+' : 'w');
    let done = start;
    opts.onProgress?.({ done, total, resumedFrom: start });
    try {
      await pump(res, fh, start, (n) => {
        done += n;
        opts.onProgress?.({ done, total, resumedFrom: start });
      });
      await fh.truncate(done);
      await fh.sync();
    } catch (e) {
      lastError = e as Error;
      resumed = true; // the next attempt continues the .part
      continue;
    } finally {
      await fh.close().catch(() => {});
    }
    return finish(part, dest, done, meta, resumed, restarted);
  }
  throw new HttpError(`${url}: download failed after ${retries + 1} attempts (${lastError?.message ?? 'unknown error'}); the partial file ${part} is kept for the next try`, 0);
}

async function finish(part: string, dest: string, bytes: number, meta: Meta, resumed: boolean, restarted: boolean): Promise<DownloadResult> {
  const size = await fileSize(part);
  if (meta.size !== undefined && size !== meta.size) {
    await unlink(part).catch(() => {});
    throw new IntegrityError(`${dest}: downloaded ${size} bytes but the server announced ${meta.size}; partial file deleted`);
  }
  const sum = await sha256File(part);
  if (meta.sha256 && sum !== meta.sha256) {
    await unlink(part).catch(() => {});
    throw new IntegrityError(`${dest}: sha256 ${sum} does not match the expected ${meta.sha256}; download deleted`);
  }
  await rename(part, dest);
  return { path: dest, bytes: size || bytes, sha256: sum, resumed, restarted, verified: meta.sha256 };
}
