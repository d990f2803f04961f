/**
 * Where one request runs: a pure function of the policy, the probed capabilities, the cached
 * benchmark, the catalogue's model and the tier's fallback right. No I/O, no clock: it is what the
 * Node unit tests check, and what costs a request well under a millisecond.
 *
 * Every decision carries its reasons (machine-readable tokens, the first of a refusal also
 * becomes the `x-inferlab-fallback` header of the server request).
 */

import type { Benchmark } from './benchmark.js';
import type { Capabilities } from './capabilities.js';
import type { BrowserModel, Policy, Where } from './types.js';

export interface DecisionInput {
  policy: Policy;
  capabilities: Capabilities;
  model: BrowserModel | null;
  benchmark: Benchmark | null;
  /** the caller's tier may send the server what the browser cannot run */
  serverFallback: boolean;
  /** a local load already failed in this page (hash mismatch, out of memory): do not try again */
  localBroken?: string | null;
  /** the least benchmark score (MFLOP/s) to run locally */
  minMflops?: number;
}

export interface Decision {
  where: Where | 'none';
  reasons: string[];
  /** may a local failure (load, timeout, mid-stream) continue on the server? */
  fallback: boolean;
  /** WebGPU is there and large enough for WebLLM (MLC weights): detected, not used by this client */
  webllm: boolean;
}

export const DEFAULT_MIN_MFLOPS = 20; // a device below this is hopeless for even a 135M model
const WEBLLM_MIN_STORAGE = 128 * 1024 * 1024;

/** Why this browser cannot run `model` locally (empty: it can). */
export function localBlockers(input: DecisionInput): string[] {
  const { capabilities: caps, model } = input;
  const found: string[] = [];
  if (model === null) return ['model_not_in_browser_catalogue'];
  if (model.engine !== 'wllama') found.push(`engine_${model.engine}_not_supported`);
  if (!caps.wasm) return [...found, 'wasm_unavailable'];
  if (!caps.simd) found.push('wasm_simd_missing');
  if (!caps.exceptions) found.push('wasm_exceptions_missing');
  if (!caps.jspi || !caps.memory64) found.push('wasm_jspi_or_memory64_missing');
  if (caps.deviceMemoryGb !== null && caps.deviceMemoryGb < model.min_memory_gb) {
    found.push('device_memory_too_small');
  }
  if (!caps.cacheApi || !caps.subtleCrypto) found.push('no_cache_or_crypto');
  const minimum = input.minMflops ?? DEFAULT_MIN_MFLOPS;
  if (input.benchmark !== null && input.benchmark.mflops < minimum) found.push('device_too_slow');
  if (input.localBroken) found.push(input.localBroken);
  return found;
}

export function decide(input: DecisionInput): Decision {
  const blockers = localBlockers(input);
  const caps = input.capabilities;
  const webllm = caps.webgpu && (caps.gpuStorageBufferBytes ?? 0) >= WEBLLM_MIN_STORAGE;
  const notes = [caps.threads ? 'wasm_threads' : 'wasm_single_thread', webllm ? 'webgpu_webllm_capable' : 'no_webgpu'];
  const canLocal = blockers.length === 0;
  switch (input.policy) {
    case 'server-only':
      return { where: 'server', reasons: ['policy_server_only'], fallback: false, webllm };
    case 'local-only':
      return canLocal
        ? { where: 'local', reasons: ['policy_local_only', ...notes], fallback: false, webllm }
        : { where: 'none', reasons: ['policy_local_only', ...blockers], fallback: false, webllm };
    case 'server-first':
      // the server is the primary path (not a fallback); local answers when the server cannot
      return { where: 'server', reasons: ['policy_server_first', ...(canLocal ? ['local_as_backup'] : blockers)],
        fallback: false, webllm };
    case 'local-first':
    default:
      if (canLocal) {
        return { where: 'local', reasons: ['policy_local_first', ...notes], fallback: input.serverFallback, webllm };
      }
      if (!input.serverFallback) {
        return { where: 'none', reasons: [...blockers, 'server_fallback_not_in_tier'], fallback: false, webllm };
      }
      return { where: 'server', reasons: blockers, fallback: true, webllm };
  }
}

/** The header token for a server request that replaces a local one: the first reason. */
export function fallbackReason(reasons: string[]): string {
  const reason = reasons.find((r) => !r.startsWith('policy_')) ?? 'local_unavailable';
  return reason.toLowerCase().replace(/[^a-z0-9_.-]/g, '_').slice(0, 64);
}
