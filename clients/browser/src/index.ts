export { InferLabBrowser, type ClientOptions, type HybridStream } from './client.js';
export { probeCapabilities, type Capabilities } from './capabilities.js';
export { cachedBenchmark, runBenchmark, stillValid, type Benchmark } from './benchmark.js';
export { decide, fallbackReason, localBlockers, type Decision, type DecisionInput } from './policy.js';
export { HashMismatch, loadModelFile, CACHE_NAME, type Progress } from './loader.js';
export { LocalEngine } from './local.js';
export { webllmSupport } from './webllm.js';
export * from './types.js';
