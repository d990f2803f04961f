/**
 * The local path: wllama (llama.cpp compiled to WebAssembly) running the catalogue's GGUF, loaded
 * once per page from a verified Blob. Its chunks are OpenAI-shaped already; usage comes with them.
 */

import { Wllama, type WllamaLogger } from '@wllama/wllama';
import type { ChatCompletionChunk, ChatCompletionCreateParams, Usage } from './types.js';

const QUIET: WllamaLogger = {
  debug: () => {}, log: () => {}, warn: (...a: unknown[]) => console.warn(...a), error: (...a: unknown[]) => console.error(...a),
};

export class LocalEngine {
  private wllama: Wllama | null = null;
  private loadedModel: string | null = null;
  private generating: AbortController | null = null;

  constructor(private readonly wasmURL: string) {}

  get loaded(): string | null {
    return this.loadedModel;
  }

  get threads(): number {
    return this.wllama?.getNumThreads() ?? 0;
  }

  async load(name: string, blob: Blob, contextSize: number): Promise<void> {
    if (this.loadedModel === name && this.wllama) return;
    await this.exit();
    const wllama = new Wllama({ default: this.wasmURL }, { logger: QUIET, suppressNativeLog: true });
    wllama.setCompat(null); // never fetch a compatibility build from a CDN: the default build or nothing
    await wllama.loadModel([blob], { n_ctx: contextSize, n_gpu_layers: 0 });
    this.wllama = wllama;
    this.loadedModel = name;
  }

  /** The answer as chunks; a failure of the engine (or `kill`) ends the iteration with an error. */
  async *stream(params: ChatCompletionCreateParams): AsyncGenerator<ChatCompletionChunk & { usage?: Usage | null }> {
    const wllama = this.wllama;
    if (!wllama) throw new Error('no local model is loaded');
    const abort = new AbortController();
    this.generating = abort;
    try {
      const chunks = await wllama.createChatCompletion({
        messages: params.messages, stream: true, abortSignal: abort.signal,
        max_tokens: params.max_tokens, temperature: params.temperature ?? 0.8, top_p: params.top_p,
        seed: params.seed, ...(params.stop !== undefined ? { stop: params.stop } : {}),
        stream_options: { include_usage: true }, timings_per_token: true,
      } as Parameters<Wllama['createChatCompletion']>[0] & { stream: true });
      // a killed worker may leave the engine's stream pending forever: the abort ends it at once
      const stopped = new Promise<never>((_, reject) => {
        abort.signal.addEventListener('abort', () => reject(new Error('the local engine was stopped')), { once: true });
      });
      stopped.catch(() => {});
      const iterator = (chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      for (;;) {
        const next = await Promise.race([iterator.next(), stopped]);
        if (next.done) break;
        yield next.value as ChatCompletionChunk;
      }
    } finally {
      if (this.generating === abort) this.generating = null;
    }
  }

  /** Stop the engine now (its worker and memory): a generation under way fails. */
  async kill(): Promise<void> {
    this.generating?.abort();
    await this.exit();
  }

  async exit(): Promise<void> {
    const wllama = this.wllama;
    this.wllama = null;
    this.loadedModel = null;
    if (wllama) await wllama.exit().catch(() => {});
  }
}
