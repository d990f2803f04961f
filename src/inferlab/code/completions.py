"""The CodeLab completion step: an editor's request becomes a FIM completion on the usual path.

``POST /v1/code/completions`` is a translation onto the completions call, not a second request
path: the API builds a ``Call`` of kind COMPLETION carrying the parsed editor request
(``REQUEST_NOTE``); this step — first in the chain, since it decides the model — picks the model
(the request's, else the CodeLab router's tier), writes the completion body (prefix, suffix, the
language's stop words), leaves the editor's declarations and snippets as FIM context for the
steps after it (repository retrieval, FIM), and turns the engine's answer into one cleaned
suggestion with a ``completion_id`` for accept/reject telemetry. Keys, tiers, limits, quotas,
the cache and metering all run after it, as for any completion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from inferlab.code.postprocess import clean_completion
from inferlab.code.request import CodeCompletionRequest
from inferlab.code.routing import CodeTask
from inferlab.code.step import CONTEXT_NOTE, FimContext
from inferlab.code.telemetry import CompletionTelemetry
from inferlab.errors import PermissionDenied, UpstreamError
from inferlab.pipeline import Call, Next, Reply
from inferlab.types import InferenceResponse, Usage

REQUEST_NOTE = "code.request"
DECISION_NOTE = "code.route"
HITS_NOTE = "code.hits"  # what repository retrieval found (code/context.py), returned as `snippets`

KNOWN_LANGUAGES = frozenset({
    "python", "javascript", "typescript", "go", "rust", "java", "c", "cpp", "csharp", "ruby", "php", "kotlin",
    "scala", "swift", "lua", "shell", "sql",
})
# Where a multi-line suggestion has surely left the function at the cursor: a new top-level item.
_TOP_LEVEL: dict[str, tuple[str, ...]] = {
    "python": ("\ndef ", "\nclass ", "\nif __name__", "\n@"),
    "javascript": ("\nfunction ", "\nclass ", "\nexport "),
    "typescript": ("\nfunction ", "\nclass ", "\nexport ", "\ninterface "),
    "go": ("\nfunc ", "\ntype "),
    "rust": ("\nfn ", "\npub fn ", "\nimpl ", "\nstruct "),
    "java": ("\npublic class ", "\nclass "),
}

ModelChooser = Callable[[CodeTask, Call], str]


def stop_words(request: CodeCompletionRequest) -> list[str]:
    if request.single_line:
        return ["\n"]
    return [*list(_TOP_LEVEL.get(request.language, ())), "\n\n\n"]


def repo_name(git_url: str | None) -> str | None:
    if not git_url:
        return None
    name = git_url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return name.removesuffix(".git") or None


def language_label(language: str) -> str:
    return language if language in KNOWN_LANGUAGES else "other"


def _text_and_usage(reply: Reply) -> tuple[str, Usage | None]:
    if reply.replay is not None:
        body: Any = orjson.loads(reply.replay)
        usage = Usage.from_openai(body.get("usage"))
    elif reply.response is not None:
        body, usage = reply.response.body, reply.response.usage
    else:
        raise UpstreamError("a code completion cannot be streamed")
    choices = body.get("choices") or [{}]
    text = choices[0].get("text") if isinstance(choices[0], dict) else None
    return (text if isinstance(text, str) else ""), usage


class CodeCompletions:
    def __init__(self, choose_model: ModelChooser, telemetry: CompletionTelemetry) -> None:
        self._choose = choose_model
        self._telemetry = telemetry

    async def __call__(self, call: Call, call_next: Next) -> Reply:
        request = call.notes.get(REQUEST_NOTE)
        if not isinstance(request, CodeCompletionRequest):
            return await call_next(call)
        model = request.model or self._choose(CodeTask.of_completion(request), call)
        if not call.caller.may_use(model):
            raise PermissionDenied(f"This key may not use the model '{model}'", code="model_not_allowed", param="model")
        call.model = model
        call.stream = False
        body: dict[str, Any] = {"model": model, "prompt": request.prefix, "suffix": request.suffix,
                                "max_tokens": request.max_tokens, "temperature": request.temperature,
                                "stop": stop_words(request)}
        if request.seed is not None:
            body["seed"] = request.seed
        call.body = body
        call.notes[CONTEXT_NOTE] = FimContext(request.declarations + request.snippets, request.filepath,
                                              repo_name(request.git_url))
        reply = await call_next(call)
        raw, usage = _text_and_usage(reply)
        text = clean_completion(raw, request.prefix, request.suffix, single=request.single_line)
        completion_id = f"code-{call.request_id}"
        language = language_label(request.language)
        self._telemetry.issued(completion_id, tenant=call.caller.tenant_id, model=model, language=language)
        answer: dict[str, Any] = {
            "id": completion_id, "completion_id": completion_id, "object": "code_completion", "model": model,
            "choices": [{"index": 0, "text": text}],
        }
        hits = call.notes.get(HITS_NOTE)
        if hits:
            answer["snippets"] = hits
        decision = call.notes.get(DECISION_NOTE)
        if decision is not None:
            answer["routing"] = decision
        if usage is not None:
            answer["usage"] = usage.to_openai()
        return Reply(response=InferenceResponse(answer, usage))
