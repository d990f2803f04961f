/** The server path: InferLab's /v1/chat/completions with the user's key, read as SSE. */

import { InferLabError, type ChatCompletionChunk, type ChatCompletionCreateParams } from './types.js';

export interface ServerRequest {
  baseURL: string;
  apiKey: string | null;
  params: ChatCompletionCreateParams;
  requestId: string;
  fallback: string | null;
  signal?: AbortSignal;
}

async function errorOf(response: Response): Promise<InferLabError> {
  let message = `HTTP ${response.status}`;
  let code: string | null = null;
  let type: string | null = null;
  try {
    const body = (await response.json()) as { error?: { message?: string; code?: string; type?: string } };
    message = body.error?.message ?? message;
    code = body.error?.code ?? null;
    type = body.error?.type ?? null;
  } catch {
    /* not JSON: the status says it */
  }
  return new InferLabError(message, response.status, code, type);
}

/** The server's answer as chunks (the request is always streamed; usage is always asked for). */
export async function* serverStream(request: ServerRequest): AsyncGenerator<ChatCompletionChunk> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': request.requestId };
  if (request.apiKey) headers.authorization = `Bearer ${request.apiKey}`;
  if (request.fallback) headers['x-inferlab-fallback'] = request.fallback;
  const body = { ...request.params, stream: true, stream_options: { include_usage: true } };
  const response = await fetch(new URL('/v1/chat/completions', request.baseURL), {
    method: 'POST', headers, body: JSON.stringify(body), signal: request.signal,
  });
  if (!response.ok || !response.body) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
      if (!data) continue;
      if (data === '[DONE]') return;
      const parsed = JSON.parse(data) as ChatCompletionChunk & { error?: { message: string; code?: string } };
      if (parsed.error) throw new InferLabError(parsed.error.message, 502, parsed.error.code ?? null, null);
      yield parsed;
    }
  }
  throw new InferLabError('the server closed the stream before [DONE]', 502, 'incomplete_stream', null);
}
