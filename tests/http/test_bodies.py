"""The one JSON decoder: what it refuses (400 not JSON or too deep, 422 lone surrogates), exactly
where the limits are, and that no text makes it recurse or scan more than once."""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from taskhub.errors import RefusedBody
from taskhub.http import bodies
from taskhub.http.bodies import (
    MAX_JSON_DEPTH,
    MAX_SEARCHED,
    Found,
    LoneSurrogate,
    decode_json,
    lone_surrogates,
    without_lone_surrogates,
)


def nested(depth: int, *, opening: str = "[", closing: str = "]") -> bytes:
    return (opening * depth + closing * depth).encode()


def objects(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


def python_steps(function: Callable[..., Any], *args: Any) -> int:
    """How many calls (of Python functions, or of C functions from Python) running it makes.

    The garbage collector is held off meanwhile: a collection it happened to start would run
    finalizers of other tests' objects (seen in CI: 101 steps instead of 49), which are not
    steps of `function`."""
    steps = 0

    def count(_frame: Any, _event: str, _arg: Any) -> None:
        nonlocal steps
        steps += 1

    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    sys.setprofile(count)
    try:
        function(*args)
    finally:
        sys.setprofile(None)
        if collecting:
            gc.enable()
    return steps


def refusal(body: bytes) -> RefusedBody:
    with pytest.raises(RefusedBody) as refused:
        decode_json(body)
    return refused.value


class TestDepth:
    @pytest.mark.parametrize("make", [nested, objects], ids=["arrays", "objects"])
    def test_32_levels_are_parsed_and_33_are_400(self, make: Any) -> None:
        assert MAX_JSON_DEPTH == 32
        assert decode_json(make(32)) == json.loads(make(32))

        refused = refusal(make(33))

        assert refused.status_code == 400
        assert "deeper than 32" in refused.detail

    def test_the_outermost_container_is_level_1_and_scalars_are_level_0(self) -> None:
        assert decode_json(b'"text"') == "text"
        assert decode_json(b"[]") == []
        mixed = b'{"a": [{"b": [' + b"[" * 28 + b"]" * 28 + b"]}]}"  # 4 + 28 = 32 levels
        assert decode_json(mixed)["a"][0]["b"] == [json.loads(b"[" * 28 + b"]" * 28)]
        assert refusal(b'{"a": [{"b": [' + b"[" * 29 + b"]" * 29 + b"]}]}").status_code == 400

    def test_siblings_do_not_add_up(self) -> None:
        wide = b"[" + b",".join([nested(31)] * 200) + b"]"

        assert len(decode_json(wide)) == 200

    @pytest.mark.parametrize("depth", [5_000, 30_000])
    def test_thousands_of_levels_are_400_not_a_recursion_error(self, depth: int) -> None:
        assert refusal(nested(depth)).status_code == 400
        assert refusal(b'{"a":' * depth).status_code == 400  # not even closed

    def test_brackets_inside_strings_do_not_count(self) -> None:
        text = json.dumps({"title": "[" * 100 + "{" * 100, "more": ["]]]}}}", '\\"[[['] * 10})

        assert decode_json(text.encode())["title"] == "[" * 100 + "{" * 100

    def test_escaped_quotes_do_not_end_a_string_early(self) -> None:
        # If \" ended the string, the brackets after it would be counted: 40 levels.
        text = '["a\\"' + "[" * 40 + '", 1]'

        assert decode_json(text.encode()) == ['a"' + "[" * 40, 1]

    def test_an_escaped_backslash_does_end_a_string(self) -> None:
        body = b'["a\\\\", ' + nested(32) + b"]"

        assert refusal(body).detail.endswith("deeper than 32 levels")

    def test_brackets_after_an_unterminated_string_are_not_counted(self) -> None:
        # The parser stops at the string, so it never reaches them: not JSON, whatever follows.
        body = b"[" * 10 + b'"' + nested(40)

        refused = refusal(body)

        assert refused.status_code == 400
        assert "not valid JSON" in refused.detail

    def test_the_depth_scan_stays_linear_on_hostile_text(self) -> None:
        """One string that never ends, full of escaped quotes: a scan that, failing to close it,
        tried again from each quote would read the rest of the text once per quote (some 100 s
        for these 60 KB; this scan takes a few milliseconds)."""
        body = b"[" * 10 + b'"' + b'\\"' * 30_000 + b"[" * 40

        began = time.perf_counter()
        refused = refusal(body)
        elapsed = time.perf_counter() - began

        assert refused.detail == "The request body is not valid JSON"
        assert elapsed < 2.0, elapsed

    def test_a_body_full_of_brackets_takes_no_python_step_per_bracket(self) -> None:
        """The scan runs before authentication, on any route with a body: it must not hand an
        anonymous client a cheap way to burn CPU. A step per bracket in Python (12,000 here)
        took 20 times as long as parsing; C-speed passes take a few steps in all."""
        wide = b"[" + b",".join([b'[["x[{", 1]]'] * 4_000) + b"]"  # 3 levels, 12,001 brackets

        assert decode_json(wide)[0] == [["x[{", 1]]
        assert python_steps(decode_json, wide) < 100


class TestEncoding:
    @pytest.mark.parametrize(
        "body",
        [b'{"a": "\xff"}', b'{"a": "\xed\xa0\x80"}', '{"a": 1}'.encode("utf-16")],
        ids=["invalid byte", "encoded surrogate", "utf-16"],
    )
    def test_a_body_that_is_not_utf8_is_400(self, body: bytes) -> None:
        refused = refusal(body)

        assert refused.status_code == 400
        assert "not valid JSON" in refused.detail

    def test_a_utf8_byte_order_mark_is_skipped_as_before(self) -> None:
        assert decode_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}

    @pytest.mark.parametrize("body", [b"", b"{", b"{'a': 1}", b"[1,]", b"1" * 5_000])
    def test_what_is_not_json_is_400(self, body: bytes) -> None:
        assert refusal(body).status_code == 400


class TestLoneSurrogates:
    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            (b'"\\ud800"', ["body"]),
            (b'{"title": "abc\\ud800def"}', ["body", "title"]),
            (b'{"a": "\\udc00"}', ["body", "a"]),
            (b'{"a": "\\uDBFF!"}', ["body", "a"]),
            (b'{"a": "\\ud800\\u0041"}', ["body", "a"]),  # high, then no low
            (b'{"a": "\\udc00\\ud800"}', ["body", "a"]),  # low before high: two lone ones
            (b'{"a": [1, {"b": ["x", "\\ud800"]}]}', ["body", "a", 1, "b", 1]),
        ],
    )
    def test_are_422_naming_the_place(self, body: bytes, loc: list[Any]) -> None:
        with pytest.raises(LoneSurrogate) as refused:
            decode_json(body)

        assert refused.value.status_code == 422
        [error] = refused.value.errors
        assert error["loc"] == loc
        assert error["type"] == "string_unicode"
        assert "lone UTF-16 surrogate" in error["msg"]
        assert refused.value.document == json.loads(body)

    def test_in_a_key_the_place_is_the_object_and_never_the_key(self) -> None:
        with pytest.raises(LoneSurrogate) as refused:
            decode_json(b'{"ok": {"x\\ud800": "\\ud800", "y\\udfff": 1, "z": "\\udc00"}}')

        assert [error["loc"] for error in refused.value.errors] == [
            ["body", "ok"],
            ["body", "ok", "z"],
        ]
        # The 422 body is written as UTF-8: nothing in it may hold the surrogate itself.
        json.dumps(refused.value.errors, ensure_ascii=False).encode("utf-8")

    def test_a_422_lists_ten_places_at_most(self) -> None:
        body = json.dumps([f"x{i}\ud800" for i in range(50)]).encode()

        with pytest.raises(LoneSurrogate) as refused:
            decode_json(body)

        assert len(lone_surrogates(json.loads(body))) == 50
        assert [error["loc"] for error in refused.value.errors] == [
            ["body", index] for index in range(10)
        ]

    @pytest.mark.parametrize(
        "body",
        [
            b'"\\ud800\\\\\\udc00"',  # high, an escaped backslash, low: two lone ones
            b'"\\\\\\ud800"',  # an escaped backslash, then a lone high one
            b'"\\ud800\\ud800\\udc00"',  # a lone high one, then a pair
            b'"\\ud83d\\ude00\\ude00"',  # a pair, then a lone low one
            b'"\\udc00\\ud800"',  # low before high: no pair
        ],
    )
    def test_lone_ones_beside_pairs_and_backslashes_are_found(self, body: bytes) -> None:
        with pytest.raises(LoneSurrogate):
            decode_json(body)

    def test_where_they_are_is_searched_in_the_first_values_else_the_body_is_named(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A step per value in Python: a body built to make the search long gets `["body"]`
        instead of a place, after at most MAX_SEARCHED steps, however big it is."""
        looked_at: list[str] = []
        holds = bodies.holds_lone_surrogate

        def counting(text: str) -> bool:
            looked_at.append(text)
            return holds(text)

        monkeypatch.setattr(bodies, "holds_lone_surrogate", counting)
        hidden = json.dumps(["x"] * 5_000 + ["\ud800"]).encode()

        with pytest.raises(LoneSurrogate) as refused:
            decode_json(hidden)

        assert [error["loc"] for error in refused.value.errors] == [["body"]]
        assert len(looked_at) < MAX_SEARCHED == 256
        assert lone_surrogates(["\ud800", *["x"] * 5_000]) == [Found((0,))]  # found first

    def test_valid_pairs_are_not_searched(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Python's json.dumps writes every emoji as a pair of escapes: such bodies are parsed,
        never searched."""

        def no_search(_document: Any) -> list[Found]:
            raise AssertionError("searched a body that holds no lone surrogate")

        monkeypatch.setattr(bodies, "lone_surrogates", no_search)
        body = json.dumps({"title": "\U0001f600 \\ud800", "items": ["\U0001f600"] * 100})

        assert decode_json(body.encode())["title"] == "\U0001f600 \\ud800"

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (b'"\\ud83d\\ude00"', "\U0001f600"),  # a pair is one character
            (b'"\\uD83D\\uDE00"', "\U0001f600"),
            (b'"\\\\ud800"', "\\ud800"),  # an escaped backslash, then text
            (b'"\\\\\\ud83d\\ude00"', "\\\U0001f600"),
            ('"\ufffd é 😀"'.encode(), "\ufffd é 😀"),
        ],
    )
    def test_what_only_looks_like_one_is_accepted(self, body: bytes, expected: str) -> None:
        assert decode_json(body) == expected

    def test_the_search_walks_without_recursion_and_finds_nothing_in_clean_documents(
        self,
    ) -> None:
        document: Any = "\ud800"
        for _ in range(MAX_SEARCHED - 1):  # nested as deep as the search goes
            document = [document]

        assert lone_surrogates(document) == [Found((0,) * (MAX_SEARCHED - 1))]
        assert lone_surrogates([document]) == []  # one level further is not searched
        assert lone_surrogates({"a": [1, 2.5, None, True, "b"]}) == []

    def test_can_be_replaced_for_display(self) -> None:
        assert without_lone_surrogates("a\ud800b\udfff") == "a\ufffdb\ufffd"
        assert without_lone_surrogates("a\U0001f600") == "a\U0001f600"
