"""The routes a call can come by (``Call.route``): what route-scoped steps are scoped to."""

from __future__ import annotations

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
RESPONSES = "/v1/responses"
BATCHES = "/v1/batches"  # a Batch API line, whatever its endpoint
CODE_COMPLETIONS = "/v1/code/completions"
CODE_REVIEW = "/v1/code/review"
CODE_DOCS = "/v1/code/docs"

TEXT_COMPLETIONS = frozenset({COMPLETIONS, CODE_COMPLETIONS, BATCHES})  # where a legacy completion can arrive
