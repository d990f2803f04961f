// The decision policy (dist/policy.js, built by tsc): where a request runs, and why.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decide, fallbackReason, localBlockers } from '../dist/policy.js';
import { webllmSupport } from '../dist/webllm.js';

const CAPABLE = {
  wasm: true, simd: true, exceptions: true, jspi: true, memory64: true, threads: true, crossOriginIsolated: true,
  deviceMemoryGb: 8, cores: 8, webgpu: false, gpuStorageBufferBytes: null, cacheApi: true, subtleCrypto: true,
};
const MODEL = {
  id: 'smollm2-135m', engine: 'wllama', url: '/browser/models/smollm2-135m.gguf', size_bytes: 98362432,
  sha256: 'a'.repeat(64), min_memory_gb: 1, expected_tokens_per_s: 15, context_size: 2048, server_model: 'smollm2-135m',
};
const FAST = { mflops: 900, measuredAt: 0, ms: 15, rounds: 12 };

function input(overrides = {}) {
  return { policy: 'local-first', capabilities: CAPABLE, model: MODEL, benchmark: FAST, serverFallback: true, ...overrides };
}

test('local-first runs locally on a capable device, with a fallback to the server', () => {
  const decision = decide(input());
  assert.equal(decision.where, 'local');
  assert.equal(decision.fallback, true);
  assert.deepEqual(decision.reasons, ['policy_local_first', 'wasm_threads', 'no_webgpu']);
});

test('local-first goes to the server when device memory is below the model minimum', () => {
  const decision = decide(input({ capabilities: { ...CAPABLE, deviceMemoryGb: 0.5 } }));
  assert.equal(decision.where, 'server');
  assert.deepEqual(decision.reasons, ['device_memory_too_small']);
  assert.equal(fallbackReason(decision.reasons), 'device_memory_too_small');
});

test('an unknown device memory (not Chromium) does not block local', () => {
  assert.equal(decide(input({ capabilities: { ...CAPABLE, deviceMemoryGb: null } })).where, 'local');
});

test('without WebAssembly nothing else is probed: the server answers', () => {
  const decision = decide(input({ capabilities: { ...CAPABLE, wasm: false, simd: false } }));
  assert.deepEqual([decision.where, decision.reasons], ['server', ['wasm_unavailable']]);
});

test('missing SIMD, exception handling, JSPI or Memory64 each block the local engine', () => {
  for (const [flag, reason] of [['simd', 'wasm_simd_missing'], ['exceptions', 'wasm_exceptions_missing'],
    ['jspi', 'wasm_jspi_or_memory64_missing'], ['memory64', 'wasm_jspi_or_memory64_missing']]) {
    assert.deepEqual(localBlockers(input({ capabilities: { ...CAPABLE, [flag]: false } })), [reason]);
  }
});

test('threads are optional: a page without cross-origin isolation runs single-threaded', () => {
  const decision = decide(input({ capabilities: { ...CAPABLE, threads: false, crossOriginIsolated: false } }));
  assert.equal(decision.where, 'local');
  assert.ok(decision.reasons.includes('wasm_single_thread'));
});

test('a slow benchmark sends the request to the server; no benchmark yet does not block', () => {
  assert.deepEqual(decide(input({ benchmark: { mflops: 10, measuredAt: 0, ms: 15, rounds: 12 } })).reasons, ['device_too_slow']);
  assert.equal(decide(input({ benchmark: null })).where, 'local');
  assert.equal(decide(input({ benchmark: { mflops: 10, measuredAt: 0, ms: 15, rounds: 12 }, minMflops: 5 })).where, 'local');
});

test('a model outside the browser catalogue, or a broken local load, goes to the server', () => {
  assert.deepEqual(decide(input({ model: null })).reasons, ['model_not_in_browser_catalogue']);
  assert.deepEqual(decide(input({ localBroken: 'hash_mismatch' })).reasons, ['hash_mismatch']);
  assert.deepEqual(decide(input({ model: { ...MODEL, engine: 'webllm' } })).reasons, ['engine_webllm_not_supported']);
});

test('a tier without server fallback cannot run what the browser cannot', () => {
  const decision = decide(input({ serverFallback: false, capabilities: { ...CAPABLE, deviceMemoryGb: 0.25 } }));
  assert.equal(decision.where, 'none');
  assert.deepEqual(decision.reasons, ['device_memory_too_small', 'server_fallback_not_in_tier']);
  const local = decide(input({ serverFallback: false }));
  assert.deepEqual([local.where, local.fallback], ['local', false]);
});

test('local-only never uses the server; server-only never the browser', () => {
  assert.deepEqual([decide(input({ policy: 'local-only' })).where, decide(input({ policy: 'local-only' })).fallback],
    ['local', false]);
  const refused = decide(input({ policy: 'local-only', capabilities: { ...CAPABLE, wasm: false } }));
  assert.deepEqual([refused.where, refused.reasons], ['none', ['policy_local_only', 'wasm_unavailable']]);
  const server = decide(input({ policy: 'server-only', capabilities: { ...CAPABLE, wasm: false } }));
  assert.deepEqual([server.where, server.reasons, server.fallback], ['server', ['policy_server_only'], false]);
});

test('server-first asks the server, not as a fallback, and says whether local could back it up', () => {
  const decision = decide(input({ policy: 'server-first' }));
  assert.deepEqual([decision.where, decision.fallback, decision.reasons], ['server', false,
    ['policy_server_first', 'local_as_backup']]);
});

test('WebGPU is detected for WebLLM, never chosen by this client', () => {
  const gpu = { ...CAPABLE, webgpu: true, gpuStorageBufferBytes: 1 << 30 };
  const decision = decide(input({ capabilities: gpu }));
  assert.deepEqual([decision.where, decision.webllm], ['local', true]);
  assert.ok(decision.reasons.includes('webgpu_webllm_capable'));
  assert.deepEqual(webllmSupport({ ...gpu, gpuStorageBufferBytes: 64 << 20 }).reasons, ['gpu_storage_buffer_too_small']);
  assert.deepEqual(webllmSupport(CAPABLE), { supported: false, reasons: ['no_webgpu_adapter'] });
});

test('the fallback header token is a short lower-case reason', () => {
  assert.equal(fallbackReason(['policy_local_first', 'Device Memory!']), 'device_memory_');
  assert.equal(fallbackReason([]), 'local_unavailable');
  assert.ok(fallbackReason(['x'.repeat(100)]).length <= 64);
});

test('a decision costs well under the 5 ms budget', () => {
  const started = performance.now();
  for (let i = 0; i < 10_000; i++) decide(input({ capabilities: { ...CAPABLE, deviceMemoryGb: i % 4 } }));
  const perDecisionMs = (performance.now() - started) / 10_000;
  assert.ok(perDecisionMs < 0.5, `${perDecisionMs} ms a decision`);
});
