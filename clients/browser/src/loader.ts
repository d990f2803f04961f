/**
 * A browser model's bytes: from the Cache API when a verified copy is there, else downloaded from
 * InferLab with progress events, verified against the catalogue's SHA-256, then cached. A copy
 * whose hash does not match is never cached nor loaded (`HashMismatch`).
 */

import type { BrowserModel } from './types.js';

export const CACHE_NAME = 'inferlab-browser-models';

export interface Progress {
  phase: 'download' | 'verify' | 'cache' | 'load';
  loaded: number;
  total: number;
  cached: boolean;
}

export class HashMismatch extends Error {
  constructor(readonly expected: string, readonly actual: string) {
    super(`the model's SHA-256 is ${actual}, the catalogue says ${expected}`);
    this.name = 'HashMismatch';
  }
}

export class DownloadFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DownloadFailed';
  }
}

function hex(buffer: ArrayBuffer): string {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The cache entry's key: the model's URL with its hash, so a new file is a new entry. */
function cacheKey(url: string, sha256: string): string {
  const key = new URL(url);
  key.searchParams.set('sha256', sha256);
  return key.toString();
}

async function download(url: string, size: number, onProgress: (p: Progress) => void): Promise<Uint8Array<ArrayBuffer>> {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok || !response.body) throw new DownloadFailed(`GET ${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length')) || size;
  const bytes = new Uint8Array(total);
  const reader = response.body.getReader();
  let loaded = 0;
  let told = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.length > bytes.length) throw new DownloadFailed(`GET ${url}: more bytes than announced`);
    bytes.set(value, loaded);
    loaded += value.length;
    if (loaded - told >= 1 << 20 || loaded === total) {
      told = loaded;
      onProgress({ phase: 'download', loaded, total, cached: false });
    }
  }
  if (loaded !== total) throw new DownloadFailed(`GET ${url}: ${loaded} of ${total} bytes`);
  return bytes;
}

export interface Loaded {
  blob: Blob;
  cached: boolean;
  ms: number;
}

/** The verified model file as a Blob (wllama loads Blobs). */
export async function loadModelFile(model: BrowserModel, baseURL: string,
  onProgress: (p: Progress) => void = () => {}, useCache = true): Promise<Loaded> {
  const started = performance.now();
  const url = new URL(model.url, baseURL).toString();
  const key = cacheKey(url, model.sha256);
  const cache = useCache && typeof caches === 'object' ? await caches.open(CACHE_NAME) : null;
  const hit = cache ? await cache.match(key) : undefined;
  if (hit) {
    // stored only after its hash was verified, under a key naming that hash
    const blob = await hit.blob();
    onProgress({ phase: 'cache', loaded: blob.size, total: blob.size, cached: true });
    return { blob, cached: true, ms: performance.now() - started };
  }
  const bytes = await download(url, model.size_bytes, onProgress);
  onProgress({ phase: 'verify', loaded: bytes.length, total: bytes.length, cached: false });
  const actual = hex(await crypto.subtle.digest('SHA-256', bytes));
  if (actual !== model.sha256) throw new HashMismatch(model.sha256, actual);
  const blob = new Blob([bytes], { type: 'application/octet-stream' });
  if (cache) {
    await cache.put(key, new Response(blob, { headers: { 'content-length': String(blob.size) } }));
  }
  return { blob, cached: false, ms: performance.now() - started };
}
