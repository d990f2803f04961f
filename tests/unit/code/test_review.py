from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer

from inferlab.app import create_app
from inferlab.code.diff import parse_diff
from inferlab.code.review import (
    ANSWER_TOKENS,
    COMMENT_TOKENS,
    MAX_TEXT,
    MIN_TEXT,
    ReviewRequest,
    constrained_schema,
    first_shape,
    fitted_shape,
    validate_review,
)
from inferlab.config import load_settings
from inferlab.errors import InvalidRequest
from inferlab.testing import EngineSimulator

DIFF = """diff --git a/calc/stats.py b/calc/stats.py
index 1111111..2222222 100644
--- a/calc/stats.py
+++ b/calc/stats.py
@@ -10,6 +10,7 @@ def mean(values):
     if not values:
         raise ValueError("empty")
-    return sum(values) / len(values)
+    total = sum(values)
+    return total / (len(values) - 1)


 def median(values):
"""


def test_diff_lines_are_the_new_sides_numbers() -> None:
    diff = parse_diff(DIFF)
    lines = diff.files["calc/stats.py"].lines
    assert sorted(lines) == [10, 11, 12, 13, 14, 15, 16]
    assert lines[13] == "    return total / (len(values) - 1)" and diff.files["calc/stats.py"].added == {12, 13}
    assert "    13 +    return total / (len(values) - 1)" in diff.numbered
    with pytest.raises(InvalidRequest):
        parse_diff("not a diff")


def test_validation_checks_the_schema_and_that_lines_are_in_the_diff() -> None:
    diff = parse_diff(DIFF)
    good = {"comments": [{"path": "calc/stats.py", "line": 13, "severity": "error", "category": "bug",
                          "message": "off by one", "suggestion": "divide by len(values)"}]}
    assert validate_review(orjson.dumps(good).decode(), diff)[0]["line"] == 13
    for bad, reason in [({**good["comments"][0], "line": 99}, "not in the diff"),
                        ({**good["comments"][0], "severity": "fatal"}, "schema"),
                        ({**good["comments"][0], "path": "other.py"}, "not in the diff")]:
        with pytest.raises(ValueError, match=reason):
            validate_review(orjson.dumps({"comments": [bad]}).decode(), diff)
    with pytest.raises(ValueError, match="not JSON"):
        validate_review("Looks good to me!", diff)
    schema = constrained_schema(diff)
    assert schema["properties"]["comments"]["items"]["properties"]["line"] == {"enum": [10, 11, 12, 13, 14, 15, 16]}


def test_the_retrys_shape_fits_max_tokens_even_if_every_character_is_a_token() -> None:
    for max_tokens in (16, 100, 160, 250, 768, 4096):
        for max_comments in (1, 2, 5, 20):
            shape = fitted_shape(max_tokens, max_comments)
            assert 1 <= shape.comments <= max_comments and MIN_TEXT <= shape.suggestion <= shape.message <= MAX_TEXT
            if max_tokens >= ANSWER_TOKENS + COMMENT_TOKENS + 2 * MIN_TEXT:  # else nothing fits: the floor
                assert shape.worst_case_tokens <= max_tokens, (max_tokens, max_comments, shape)
    assert fitted_shape(768, 20).comments == 6  # fewer comments, each still readable
    assert fitted_shape(4096, 1).message == MAX_TEXT  # never past the general schema's bound


def test_the_first_attempt_sizes_its_text_for_a_few_comments() -> None:
    diff = parse_diff(DIFF)
    few = first_shape(ReviewRequest(diff, max_tokens=768, max_comments=20))
    assert few.comments == 20 and few.message > 100  # room for a typical review's three comments
    alone = first_shape(ReviewRequest(diff, max_tokens=160, max_comments=1))
    assert alone.worst_case_tokens <= 160
    item = constrained_schema(diff, alone)["properties"]["comments"]["items"]
    assert item["properties"]["message"]["maxLength"] == alone.message


@pytest.fixture
async def server(sim: EngineSimulator) -> AsyncIterator[TestServer]:
    settings = load_settings(overrides={"models": [{"name": "sim-model", "backend": "openai", "url": sim.base_url + "/v1"}]})
    server = TestServer(await create_app(settings))
    await server.start_server()
    yield server
    await server.close()


async def post(server: TestServer, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.post(server.make_url(path), json=body) as response:
        return response.status, await response.json()


async def test_an_engine_that_ignores_the_schema_gets_one_retry_then_a_clear_error(
        server: TestServer, sim: EngineSimulator) -> None:
    status, body = await post(server, "/v1/code/review", {"diff": DIFF})
    assert status == 502 and body["error"]["code"] == "invalid_review" and "after a retry" in body["error"]["message"]
    sent = sim.last_request
    assert sent is not None and sent["response_format"]["type"] == "json_schema"
    assert "previous answer was rejected" in sent["messages"][-1]["content"]  # the second attempt says why


async def test_an_answer_cut_off_at_max_tokens_is_asked_again_in_a_shape_that_fits(
        server: TestServer, sim: EngineSimulator) -> None:
    sim.script.completion_tokens = 1000  # the simulator writes past any max_tokens: finish_reason "length"
    status, body = await post(server, "/v1/code/review", {"diff": DIFF, "max_tokens": 400, "max_comments": 10})
    assert status == 502 and body["error"]["code"] == "invalid_review"
    assert "did not fit in max_tokens (400)" in body["error"]["message"]
    sent = sim.last_request
    assert sent is not None and "cut off at max_tokens" in sent["messages"][-1]["content"]
    schema = sent["response_format"]["json_schema"]["schema"]["properties"]["comments"]
    retry = fitted_shape(400, 10)
    assert schema["maxItems"] == retry.comments < 10 and schema["items"]["properties"]["message"]["maxLength"] == retry.message
    assert retry.worst_case_tokens <= 400


async def test_a_streamed_review_passes_the_chunks_then_ends_with_its_verdict(server: TestServer) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            server.make_url("/v1/code/review"), json={"diff": DIFF, "stream": True}) as response:
        assert response.status == 200 and response.content_type == "text/event-stream"
        events = [line[6:] for line in (await response.text()).split("\n") if line.startswith("data: ")]
    chunks = [orjson.loads(e) for e in events if e != "[DONE]"]
    assert any(c.get("object") == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["error"]["code"] == "invalid_review"  # the simulator's prose is no review


async def test_docs_answer_in_the_languages_convention(server: TestServer, sim: EngineSimulator) -> None:
    status, body = await post(server, "/v1/code/docs", {"language": "rust", "code": "fn add(a: i32, b: i32) -> i32 { a + b }"})
    assert status == 200 and body["object"] == "code.docs" and body["content"]
    assert "///" in body["convention"] and "///" in sim.last_request["messages"][-1]["content"]  # type: ignore[index]
    status, body = await post(server, "/v1/code/docs", {"language": "python", "code": ""})
    assert status == 400 and body["error"]["param"] == "code"
