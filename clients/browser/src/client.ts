/**
 * `InferLabBrowser`: one OpenAI-shaped API (`chat.completions.create`, streamed or not) that runs
 * each request in the browser (wllama) when the device can and the policy wants, and on InferLab
 * otherwise — falling back to the server when the local model cannot load, times out, or fails
 * mid-stream (the server then continues the answer: the caller sees one stream, one id, one
 * finish). Local generations are reported to InferLab's usage ledger, marked local.
 */

import { cachedBenchmark, type Benchmark } from './benchmark.js';
import { probeCapabilities, type Capabilities } from './capabilities.js';
import { HashMismatch, loadModelFile, type Progress } from './loader.js';
import { LocalEngine } from './local.js';
import { decide, DEFAULT_MIN_MFLOPS, fallbackReason, type Decision } from './policy.js';
import { serverStream } from './server.js';
import {
  InferLabError, type BrowserModel, type Catalogue, type ChatCompletion, type ChatCompletionChunk,
  type ChatCompletionCreateParams, type FinishReason, type Policy, type RunInfo, type Usage,
} from './types.js';

export interface ClientOptions {
  /** InferLab's origin (default: the page's) */
  baseURL?: string;
  apiKey?: string | null;
  policy?: Policy;
  /** the local engine must give its first token within this (after loading) */
  firstTokenTimeoutMs?: number;
  /** ... and each next one within this */
  stallTimeoutMs?: number;
  useCache?: boolean;
  minMflops?: number;
  /** override probed capabilities (a page that knows better; tests) */
  capabilities?: Partial<Capabilities>;
  onProgress?: (progress: Progress & { model: string }) => void;
  onDecision?: (decision: Decision & { model: string; decisionMs: number }) => void;
  reportUsage?: boolean;
}

export interface HybridStream extends AsyncIterable<ChatCompletionChunk> {
  /** where the answer ran, why, the fallback; complete once the stream ended */
  readonly inferlab: RunInfo;
}

function newId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return 'hyb-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class LocalTimeout extends Error {}

async function nextWithin<T>(iterator: AsyncIterator<T>, ms: number): Promise<IteratorResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LocalTimeout(`no token in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([iterator.next(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface LocalOutcome {
  prompt: number;
  completion: number;
  ttftMs: number | null;
  durationMs: number;
}

export class InferLabBrowser {
  readonly chat = {
    completions: {
      create: ((params: ChatCompletionCreateParams) => this.create(params)) as {
        (params: ChatCompletionCreateParams & { stream: true }): Promise<HybridStream>;
        (params: ChatCompletionCreateParams & { stream?: false }): Promise<ChatCompletion>;
      },
    },
  };
  readonly local: LocalEngine;
  private readonly baseURL: string;
  private readonly options: ClientOptions;
  private catalogueP: Promise<Catalogue> | null = null;
  private capabilitiesP: Promise<Capabilities> | null = null;
  private benchmark: Benchmark | null = null;
  private localBroken: string | null = null;
  private loading: Promise<void> | null = null;
  private readonly reports = new Set<Promise<void>>();

  constructor(options: ClientOptions = {}) {
    this.options = options;
    this.baseURL = options.baseURL ?? globalThis.location.origin;
    this.local = new LocalEngine(new URL('/browser/client/wllama.wasm', this.baseURL).toString());
  }

  /** The catalogue (fetched once). */
  catalogue(): Promise<Catalogue> {
    this.catalogueP ??= this.fetchCatalogue().catch((error) => {
      this.catalogueP = null;
      throw error;
    });
    return this.catalogueP;
  }

  /** The probed capabilities (once), with the options' overrides; the benchmark is run (or read
   * from its cache) with them, so that a decision only reads what is already known. */
  capabilities(): Promise<Capabilities> {
    this.capabilitiesP ??= probeCapabilities().then((found) => {
      const caps = { ...found, ...this.options.capabilities };
      if ((this.options.policy ?? 'local-first') !== 'server-only' && caps.wasm) {
        this.benchmark = cachedBenchmark(this.options.minMflops ?? DEFAULT_MIN_MFLOPS);
      }
      return caps;
    });
    return this.capabilitiesP;
  }

  /** Where a request for `model` would run now, and why. */
  async decide(model: string): Promise<Decision & { decisionMs: number; browserModel: BrowserModel | null }> {
    const [catalogue, caps] = await Promise.all([this.catalogue(), this.capabilities()]);
    const started = performance.now();
    const browserModel = catalogue.data.find((m) => m.id === model) ?? null;
    const policy = this.options.policy ?? 'local-first';
    const decision = decide({
      policy, capabilities: caps, model: browserModel, benchmark: this.benchmark, serverFallback: catalogue.policy.server_fallback,
      localBroken: this.localBroken, minMflops: this.options.minMflops,
    });
    return { ...decision, decisionMs: performance.now() - started, browserModel };
  }

  /** Change the policy of the next requests (the loaded model stays loaded). */
  setPolicy(policy: Policy): void {
    this.options.policy = policy;
  }

  /** Reports of local usage still being sent. */
  async flushReports(): Promise<void> {
    while (this.reports.size) await Promise.allSettled([...this.reports]);
  }

  private async fetchCatalogue(): Promise<Catalogue> {
    const response = await fetch(new URL('/v1/browser/models', this.baseURL), { headers: this.authHeaders() });
    if (!response.ok) throw new InferLabError(`GET /v1/browser/models: HTTP ${response.status}`, response.status, null, null);
    return (await response.json()) as Catalogue;
  }

  private authHeaders(): Record<string, string> {
    return this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {};
  }

  private async create(params: ChatCompletionCreateParams): Promise<HybridStream | ChatCompletion> {
    const info: RunInfo = {
      where: 'server', ran: 'server', reasons: [], fallback: null, decisionMs: 0, ttftMs: null,
      tokensPerSecond: null, requestId: newId(),
    };
    const decision = await this.decide(params.model);
    Object.assign(info, { where: decision.where === 'local' ? 'local' : 'server', reasons: decision.reasons,
      decisionMs: decision.decisionMs });
    this.options.onDecision?.({ ...decision, model: params.model });
    if (decision.where === 'none') {
      throw new InferLabError(`${params.model} cannot run in this browser: ${decision.reasons.join(', ')}`, 0,
        'local_unavailable', 'invalid_request_error');
    }
    const chunks = this.shaped(params, info, this.route(params, info, decision));
    if (params.stream) {
      const first = await chunks.next(); // errors before the first chunk reject create(), as OpenAI's SDK does
      const stream: HybridStream = {
        inferlab: info,
        async *[Symbol.asyncIterator]() {
          if (!first.done) yield first.value;
          yield* { [Symbol.asyncIterator]: () => chunks };
        },
      };
      return stream;
    }
    return this.collect(params, info, chunks);
  }

  private async collect(params: ChatCompletionCreateParams, info: RunInfo,
    chunks: AsyncGenerator<ChatCompletionChunk>): Promise<ChatCompletion> {
    let content = '';
    let finish: FinishReason = null;
    let usage: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    let created = Math.floor(Date.now() / 1000);
    for await (const chunk of chunks) {
      created = chunk.created;
      for (const choice of chunk.choices) {
        content += choice.delta.content ?? '';
        finish = choice.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    return {
      id: `chatcmpl-${info.requestId}`, object: 'chat.completion', created, model: params.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }], usage, inferlab: info,
    };
  }

  /** One output contract whatever ran: one id, the asked model name, usage only when asked for. */
  private async *shaped(params: ChatCompletionCreateParams, info: RunInfo,
    source: AsyncGenerator<ChatCompletionChunk>): AsyncGenerator<ChatCompletionChunk> {
    const id = `chatcmpl-${info.requestId}`;
    const wantUsage = Boolean(params.stream_options?.include_usage) || !params.stream;
    for await (const chunk of source) {
      const shaped: ChatCompletionChunk = { id, object: 'chat.completion.chunk', created: chunk.created,
        model: params.model, choices: chunk.choices.map((c) => ({ index: c.index, delta: c.delta,
          finish_reason: c.finish_reason ?? null })) };
      if (chunk.usage) {
        if (!wantUsage) {
          if (!shaped.choices.length) continue;
        } else {
          shaped.usage = chunk.usage;
        }
      }
      yield shaped;
    }
  }

  private async *route(params: ChatCompletionCreateParams, info: RunInfo,
    decision: Decision & { browserModel: BrowserModel | null }): AsyncGenerator<ChatCompletionChunk> {
    const serverModel = decision.browserModel?.server_model ?? params.model;
    if (decision.where === 'server') {
      const fallback = decision.fallback ? fallbackReason(decision.reasons) : null;
      info.fallback = fallback;
      const backup = decision.reasons.includes('local_as_backup') ? decision.browserModel : null;
      let started = false;
      try {
        for await (const chunk of this.timedServer({ ...params, model: serverModel }, info, fallback)) {
          started = true;
          yield chunk;
        }
      } catch (error) {
        // server-first: a server that cannot answer (unreachable, 429, 5xx) before its first chunk
        // leaves the answer to the browser when it can run the model
        const status = error instanceof InferLabError ? error.status : 0;
        if (started || backup === null || (status !== 0 && status !== 429 && status < 500)) throw error;
        const reason = status ? `server_${status}` : 'server_unreachable';
        Object.assign(info, { where: 'local', ran: 'local', fallback: reason });
        info.reasons.push(reason);
        await this.ensureLoaded(backup);
        yield* this.localThenServer(params, info, { ...decision, fallback: false }, backup, serverModel);
      }
      return;
    }
    const model = decision.browserModel!;
    try {
      await this.ensureLoaded(model);
    } catch (error) {
      const reason = error instanceof HashMismatch ? 'hash_mismatch' : 'load_failed';
      this.localBroken = reason;
      if (!decision.fallback) throw error;
      Object.assign(info, { where: 'server', ran: 'server', fallback: reason });
      info.reasons.push(reason);
      yield* this.timedServer({ ...params, model: serverModel }, info, reason);
      return;
    }
    yield* this.localThenServer(params, info, decision, model, serverModel);
  }

  private async ensureLoaded(model: BrowserModel): Promise<void> {
    if (this.local.loaded === model.id) return;
    this.loading ??= (async () => {
      const file = await loadModelFile(model, this.baseURL,
        (p) => this.options.onProgress?.({ ...p, model: model.id }), this.options.useCache ?? true);
      this.options.onProgress?.({ phase: 'load', loaded: 0, total: file.blob.size, cached: file.cached, model: model.id });
      await this.local.load(model.id, file.blob, model.context_size);
      this.options.onProgress?.({ phase: 'load', loaded: file.blob.size, total: file.blob.size, cached: file.cached,
        model: model.id });
    })().finally(() => {
      this.loading = null;
    });
    await this.loading;
  }

  private async *localThenServer(params: ChatCompletionCreateParams, info: RunInfo, decision: Decision,
    model: BrowserModel, serverModel: string): AsyncGenerator<ChatCompletionChunk> {
    const started = performance.now();
    const outcome: LocalOutcome = { prompt: 0, completion: 0, ttftMs: null, durationMs: 0 };
    let text = '';
    let finished = false;
    let sawUsage = false;
    const iterator = this.local.stream(params)[Symbol.asyncIterator]();
    try {
      for (;;) {
        const limit = outcome.ttftMs === null ? this.options.firstTokenTimeoutMs ?? 60_000
          : this.options.stallTimeoutMs ?? 15_000;
        const next = await nextWithin(iterator, limit);
        if (next.done) break;
        const chunk = next.value;
        for (const choice of chunk.choices) {
          if (choice.delta.content) {
            outcome.ttftMs ??= performance.now() - started;
            info.ttftMs ??= outcome.ttftMs;
            text += choice.delta.content;
            outcome.completion += 1;
          }
          if (choice.finish_reason) finished = true;
        }
        const timings = (chunk as { timings?: { prompt_n?: number; predicted_n?: number } }).timings;
        if (timings?.prompt_n) outcome.prompt = timings.prompt_n;
        if (chunk.usage) {
          outcome.prompt = chunk.usage.prompt_tokens;
          outcome.completion = chunk.usage.completion_tokens;
          sawUsage = true;
        }
        yield chunk;
      }
      if (!finished) throw new Error('the local stream ended without a finish reason');
      if (!sawUsage) { // the engine gave none: what it generated, counted
        yield { id: '', object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: model.id,
          choices: [], usage: { prompt_tokens: outcome.prompt, completion_tokens: outcome.completion,
            total_tokens: outcome.prompt + outcome.completion } };
      }
      outcome.durationMs = performance.now() - started;
      info.ran = 'local';
      const decoding = outcome.durationMs - (outcome.ttftMs ?? 0);
      info.tokensPerSecond = decoding > 0 && outcome.completion > 1 ? ((outcome.completion - 1) * 1000) / decoding : null;
      this.report(model, info, outcome, 'success');
    } catch (error) {
      void iterator.return?.(undefined);
      if (error instanceof LocalTimeout) await this.local.kill(); // a hung engine is not used again as is
      outcome.durationMs = performance.now() - started;
      const reason = error instanceof LocalTimeout ? 'local_timeout' : text ? 'local_failed_mid_stream' : 'local_failed';
      if (!decision.fallback) throw error;
      info.fallback = reason;
      info.reasons.push(reason);
      if (outcome.completion) this.report(model, info, outcome, 'error'); // what ran locally, charged as local
      if (!text) {
        Object.assign(info, { where: 'server', ran: 'server' });
        yield* this.timedServer({ ...params, model: serverModel }, info, reason);
        return;
      }
      // continue the answer on the server: the same messages and what was said so far, as the
      // assistant's message to complete (llama.cpp's server continues a trailing assistant message)
      info.ran = 'local+server';
      const rest: ChatCompletionCreateParams = {
        ...params, model: serverModel, messages: [...params.messages, { role: 'assistant', content: text }],
        ...(params.max_tokens !== undefined ? { max_tokens: Math.max(1, params.max_tokens - outcome.completion) } : {}),
      };
      let echo = text; // llama.cpp's server repeats the assistant text it continues; others do not
      for await (const chunk of this.timedServer(rest, info, reason)) {
        chunk.choices = chunk.choices.map((c) => {
          let content = c.delta.content ?? '';
          if (echo && content) {
            if (content.startsWith(echo)) [content, echo] = [content.slice(echo.length), ''];
            else if (echo.startsWith(content)) [content, echo] = ['', echo.slice(content.length)];
            else echo = '';
          }
          return { ...c, delta: { content } };
        }).filter((c) => c.delta.content || c.finish_reason);
        if (chunk.usage) { // the whole answer's usage: the local part and the server's
          const completion = outcome.completion + chunk.usage.completion_tokens;
          const prompt = outcome.prompt || chunk.usage.prompt_tokens;
          chunk.usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
        }
        if (chunk.choices.length || chunk.usage) yield chunk;
      }
    }
  }

  private async *timedServer(params: ChatCompletionCreateParams, info: RunInfo,
    fallback: string | null): AsyncGenerator<ChatCompletionChunk> {
    const started = performance.now();
    let first: number | null = null;
    let tokens = 0;
    for await (const chunk of serverStream({ baseURL: this.baseURL, apiKey: this.options.apiKey ?? null, params,
      requestId: info.requestId, fallback })) {
      if (chunk.choices.some((c) => c.delta.content)) {
        first ??= performance.now() - started;
        tokens += 1;
      }
      yield chunk;
    }
    info.ttftMs ??= first;
    const decoding = performance.now() - started - (first ?? 0);
    if (info.ran === 'server') info.tokensPerSecond = tokens > 1 && decoding > 0 ? ((tokens - 1) * 1000) / decoding : null;
  }

  private report(model: BrowserModel, info: RunInfo, outcome: LocalOutcome, status: 'success' | 'error'): void {
    if (this.options.reportUsage === false) return;
    const body = {
      id: `${info.requestId}-local`, model: model.id, engine: 'wllama', created: Date.now() / 1000,
      prompt_tokens: outcome.prompt, completion_tokens: outcome.completion,
      duration_ms: Math.round(outcome.durationMs * 1000) / 1000,
      ttft_ms: outcome.ttftMs === null ? null : Math.round(outcome.ttftMs * 1000) / 1000, status,
      request_id: info.requestId, ...(info.fallback ? { fallback: info.fallback } : {}),
    };
    const sent = this.send(body).finally(() => this.reports.delete(sent));
    this.reports.add(sent);
  }

  /** POST /v1/browser/usage, retried (the same event id: the server records it once). */
  private async send(body: Record<string, unknown>): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const response = await fetch(new URL('/v1/browser/usage', this.baseURL), {
          method: 'POST', headers: { 'content-type': 'application/json', ...this.authHeaders() },
          body: JSON.stringify(body), keepalive: true,
        });
        if (response.ok || (response.status < 500 && response.status !== 429)) return;
        const after = Number(response.headers.get('retry-after'));
        await sleep(Number.isFinite(after) && after > 0 ? after * 1000 : 250 * 2 ** attempt);
      } catch {
        await sleep(250 * 2 ** attempt);
      }
    }
  }
}
