"""Documentation generation: docstrings in the language's own convention, or a README section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from inferlab.errors import InvalidRequest

Kind = Literal["docstring", "readme"]
MAX_CODE_CHARS = 100_000

CONVENTIONS = {
    "python": "a PEP 257 docstring (Google style: Args, Returns, Raises), inside triple double quotes",
    "javascript": "a JSDoc block comment (/** ... */ with @param and @returns)",
    "typescript": "a TSDoc block comment (/** ... */ with @param and @returns)",
    "java": "a Javadoc comment (/** ... */ with @param, @return, @throws)",
    "kotlin": "a KDoc comment (/** ... */)",
    "go": "a Go doc comment: // lines starting with the identifier's name",
    "rust": "/// doc comments with # Examples, # Panics and # Errors sections where they apply",
    "c": "a Doxygen comment (/** ... */ with @param and @return)",
    "cpp": "a Doxygen comment (/** ... */ with @param and @return)",
    "csharp": "XML documentation comments (/// <summary>, <param>, <returns>)",
    "ruby": "YARD comments (# @param, # @return)",
    "php": "a PHPDoc block (/** ... */ with @param and @return)",
}
DEFAULT_CONVENTION = "the documentation comment convention usual for this language"


@dataclass(frozen=True, slots=True)
class DocsRequest:
    language: str
    code: str
    kind: Kind = "docstring"
    model: str | None = None
    tier: str | None = None
    max_tokens: int = 512
    stream: bool = False

    @property
    def convention(self) -> str:
        return CONVENTIONS.get(self.language, DEFAULT_CONVENTION)


def parse_docs(body: Any) -> DocsRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object", code="invalid_body")
    language, code, kind = body.get("language"), body.get("code"), body.get("kind", "docstring")
    if not isinstance(language, str) or not language:
        raise InvalidRequest("Missing required parameter: 'language'", param="language", code="missing_required_parameter")
    if not isinstance(code, str) or not code.strip() or len(code) > MAX_CODE_CHARS:
        raise InvalidRequest(f"'code' must be non-empty text of at most {MAX_CODE_CHARS} characters", param="code",
                             code="invalid_value")
    if kind not in ("docstring", "readme"):
        raise InvalidRequest("Invalid value for 'kind': expected 'docstring' or 'readme'", param="kind", code="invalid_value")
    max_tokens = body.get("max_tokens", 512)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 16 <= max_tokens <= 4096:
        raise InvalidRequest("Invalid value for 'max_tokens': between 16 and 4096", param="max_tokens", code="invalid_value")
    model, tier = body.get("model"), body.get("tier")
    return DocsRequest(language.lower(), code, kind, model if isinstance(model, str) else None,
                       tier if isinstance(tier, str) else None, max_tokens, body.get("stream") is True)


def docs_body(request: DocsRequest, model: str) -> dict[str, Any]:
    if request.kind == "docstring":
        ask = (f"Write the documentation of this {request.language} code as {request.convention}. "
               "Answer with the documented code only, unchanged apart from the added documentation.")
    else:
        ask = (f"Write a README section in Markdown for this {request.language} code: what it is for, how to "
               "use it (a short example), and its parameters. Answer with the Markdown only.")
    return {"model": model, "max_tokens": request.max_tokens, "temperature": 0.2,
            "messages": [{"role": "system", "content": "You write precise, concise technical documentation."},
                         {"role": "user", "content": f"{ask}\n\n```{request.language}\n{request.code}\n```"}]}
