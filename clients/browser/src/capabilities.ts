/**
 * What this browser can do, probed once: WebAssembly (SIMD, exception handling, JSPI, Memory64 —
 * what wllama's build needs), threads (cross-origin isolation + SharedArrayBuffer), device memory,
 * cores and WebGPU (WebLLM's only engine). Every probe is synchronous and cheap except WebGPU's
 * adapter request, which is awaited once.
 */

export interface Capabilities {
  wasm: boolean;
  simd: boolean;
  exceptions: boolean;
  jspi: boolean;
  memory64: boolean;
  threads: boolean;
  crossOriginIsolated: boolean;
  /** navigator.deviceMemory in GiB (Chromium; coarse), or null where the browser does not say. */
  deviceMemoryGb: number | null;
  cores: number;
  webgpu: boolean;
  /** the WebGPU adapter's largest storage buffer (bytes): WebLLM needs 128 MiB at least */
  gpuStorageBufferBytes: number | null;
  cacheApi: boolean;
  subtleCrypto: boolean;
}

// (module (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt))
const SIMD: Uint8Array<ArrayBuffer> = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0,
  253, 15, 253, 98, 11]);
// (module (func try catch_all end)): the exception handling wllama's build is compiled with
const EXCEPTIONS: Uint8Array<ArrayBuffer> = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0,
  10, 8, 1, 6, 0, 6, 64, 25, 11, 11]);

function validates(bytes: Uint8Array<ArrayBuffer>): boolean {
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

function memory64(): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    new WebAssembly.Memory({ address: 'i64', initial: BigInt(1) } as any); // an i64 memory takes BigInt sizes
    return true;
  } catch {
    return false;
  }
}

function threads(): boolean {
  if (typeof SharedArrayBuffer === 'undefined' || !globalThis.crossOriginIsolated) return false;
  try {
    const channel = new MessageChannel();
    channel.port1.postMessage(new SharedArrayBuffer(1));
    channel.port1.close();
    return true;
  } catch {
    return false;
  }
}

const GPU_PROBE_MS = 250;

async function gpu(): Promise<{ present: boolean; storage: number | null }> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const nav = globalThis.navigator as any;
  if (!nav?.gpu) return { present: false, storage: null };
  try {
    // a browser without a usable GPU may take seconds to say so: WebGPU is not worth the wait
    const adapter = await Promise.race([nav.gpu.requestAdapter(),
      new Promise((resolve) => setTimeout(() => resolve(null), GPU_PROBE_MS))]);
    if (!adapter) return { present: false, storage: null };
    return { present: true, storage: Number(adapter.limits?.maxStorageBufferBindingSize ?? 0) || null };
  } catch {
    return { present: false, storage: null };
  }
}

export async function probeCapabilities(): Promise<Capabilities> {
  const wasm = typeof WebAssembly === 'object' && typeof WebAssembly.validate === 'function';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const nav = (globalThis.navigator ?? {}) as any;
  const found = await gpu();
  return {
    wasm,
    simd: wasm && validates(SIMD),
    exceptions: wasm && validates(EXCEPTIONS),
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    jspi: wasm && typeof (WebAssembly as any).Suspending === 'function',
    memory64: wasm && memory64(),
    threads: wasm && threads(),
    crossOriginIsolated: Boolean(globalThis.crossOriginIsolated),
    deviceMemoryGb: typeof nav.deviceMemory === 'number' ? nav.deviceMemory : null,
    cores: typeof nav.hardwareConcurrency === 'number' ? nav.hardwareConcurrency : 1,
    webgpu: found.present,
    gpuStorageBufferBytes: found.storage,
    cacheApi: typeof globalThis.caches === 'object',
    subtleCrypto: Boolean(globalThis.crypto?.subtle),
  };
}
