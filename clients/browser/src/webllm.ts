/**
 * WebLLM (`@mlc-ai/web-llm`, MLC-compiled models on WebGPU) as a third engine: detected, not
 * bundled. It runs only on WebGPU (no WASM fallback for the model math) and needs MLC weights and
 * a model library InferLab's catalogue does not serve yet, so this client reports whether the
 * device could run it and leaves the engine to a page that brings it.
 */

import type { Capabilities } from './capabilities.js';

export interface WebLLMSupport {
  supported: boolean;
  reasons: string[];
}

const MIN_STORAGE = 128 * 1024 * 1024; // the TVM runtime's fallback maxStorageBufferBindingSize

export function webllmSupport(caps: Capabilities): WebLLMSupport {
  const reasons: string[] = [];
  if (!caps.webgpu) reasons.push('no_webgpu_adapter');
  else if ((caps.gpuStorageBufferBytes ?? 0) < MIN_STORAGE) reasons.push('gpu_storage_buffer_too_small');
  return { supported: reasons.length === 0, reasons };
}
