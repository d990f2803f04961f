/** OpenAI-shaped request and response types: the one output contract, wherever an answer ran. */

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatCompletionCreateParams {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
  stream_options?: { include_usage?: boolean };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | null;

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: 'assistant'; content?: string | null };
    finish_reason: FinishReason;
  }>;
  usage?: Usage | null;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: 'assistant'; content: string };
    finish_reason: FinishReason;
  }>;
  usage: Usage;
  /** Where and how this answer ran (InferLab's addition; absent from OpenAI's). */
  inferlab: RunInfo;
}

export type Where = 'local' | 'server';

/** What the client decided and what happened: the decision's reasons, the fallback if any. */
export interface RunInfo {
  where: Where;
  /** 'local+server' when a local generation failed mid-stream and the server continued it. */
  ran: 'local' | 'server' | 'local+server';
  reasons: string[];
  fallback: string | null;
  decisionMs: number;
  ttftMs: number | null;
  tokensPerSecond: number | null;
  requestId: string;
}

export type Policy = 'local-first' | 'server-first' | 'local-only' | 'server-only';

/** A browser model as InferLab's catalogue describes it (GET /v1/browser/models). */
export interface BrowserModel {
  id: string;
  engine: string;
  url: string;
  size_bytes: number;
  sha256: string;
  min_memory_gb: number;
  expected_tokens_per_s: number;
  context_size: number;
  server_model: string;
}

export interface Catalogue {
  data: BrowserModel[];
  policy: { tier: string; server_fallback: boolean };
  runtime: { client: string; wllama_wasm: string };
}

export class InferLabError extends Error {
  constructor(message: string, readonly status: number, readonly code: string | null, readonly type: string | null) {
    super(message);
    this.name = 'InferLabError';
  }
}
