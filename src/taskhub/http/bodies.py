"""The one way a request body becomes JSON, for every route.

`JSONRoute` hands each route a `JSONRequest`, whose `json()` is `decode_json`: FastAPI calls it
for a route's body parameter, and the login route calls it itself. The decoder refuses

- a body that is not UTF-8 JSON: 400;
- JSON nested deeper than `MAX_JSON_DEPTH` (the outermost object or array is level 1): 400.
  The depth is measured on the text before it is parsed, without recursion, so no body can make
  the (recursive) parser run out of stack: that was a RecursionError, a 500;
- a lone UTF-16 surrogate (`"\\ud800"` without its partner) in any string, key or value: 422.
  JSON may spell one, but it is no character: bcrypt, the database drivers and Redis cannot
  encode it (a 500 further down). `LoneSurrogate` carries the parsed document, for the one
  route that answers otherwise (login: a wrong password, 401).
"""

from __future__ import annotations

import json
import re
from array import array
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from itertools import accumulate, islice
from typing import Any, NamedTuple

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from taskhub.errors import RefusedBody

MAX_JSON_DEPTH = 32
NOT_JSON = "The request body is not valid JSON"
TOO_DEEP = f"The request body is nested deeper than {MAX_JSON_DEPTH} levels"
LONE_SURROGATE = "The request body holds a lone UTF-16 surrogate"
LONE_SURROGATE_MSG = "must not contain a lone UTF-16 surrogate (\\ud800-\\udfff without its pair)"
LONE_SURROGATE_KEY_MSG = "an object key holds a lone UTF-16 surrogate"
# How many of the places found are listed in a 422.
MAX_LISTED = 10
# Where they are is searched in this many values at most: a request's fields are found long
# before, and a body built to make the search long costs no more than parsing it.
MAX_SEARCHED = 256

# Every byte but the four brackets, and the brackets as steps of depth (+1, -1 as signed bytes).
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
# A \u escape in the surrogate range: cheap, and true of any body that holds a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Exactly the lone ones, in a text whose escaped backslashes were replaced by another character
# (a high surrogate's escape not followed by a low one's, a low one's not preceded by a high's).
_LONE_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD](?:[89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    r"|[c-fC-F][0-9a-fA-F]{2}(?<!\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}))"
)
_SURROGATE = re.compile("[\ud800-\udfff]")

Location = tuple[str | int, ...]


class Found(NamedTuple):
    """Where a lone surrogate is: in the string at `place`, or in one of its keys (an object)."""

    place: Location
    in_key: bool = False

    def error(self) -> dict[str, Any]:
        msg = LONE_SURROGATE_KEY_MSG if self.in_key else LONE_SURROGATE_MSG
        return {"loc": ["body", *self.place], "msg": msg, "type": "string_unicode"}


class LoneSurrogate(RefusedBody):
    """422 naming where they are. Keeps the parsed document for a route that answers otherwise."""

    def __init__(self, document: Any, found: list[Found]) -> None:
        errors = [where.error() for where in found[:MAX_LISTED]]
        super().__init__(422, LONE_SURROGATE, errors=errors)
        self.document = document


def decode_json(body: bytes) -> Any:
    """The parsed body, or RefusedBody (400 not JSON or too deep, 422 LoneSurrogate)."""
    # json.loads(bytes), which FastAPI used before, skips a UTF-8 byte order mark: so do we.
    body = body.removeprefix(b"\xef\xbb\xbf")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RefusedBody(400, NOT_JSON) from None
    if _nested_too_deep(body):
        raise RefusedBody(400, TOO_DEEP)
    try:
        document = json.loads(text)
    except ValueError:  # JSONDecodeError, or an integer of more than 4300 digits
        raise RefusedBody(400, NOT_JSON) from None
    if _SURROGATE_ESCAPE.search(text) and _holds_lone_surrogate(text):
        # Somewhere for sure: name the places found, or else the whole body.
        raise LoneSurrogate(document, lone_surrogates(document) or [Found(())])
    return document


def _holds_lone_surrogate(text: str) -> bool:
    """Whether a text that parsed as JSON spells a lone surrogate; a valid pair is no reason.

    Its backslashes are all in strings, where they pair up from the left: an escaped one is
    replaced first, so that what follows it is not read as an escape, and a "#" keeps the two
    escapes around it apart ("\\ud800\\\\\\udc00" holds two lone ones, not a pair).
    """
    return _LONE_SURROGATE_ESCAPE.search(text.replace("\\\\", "#")) is not None


def _nested_too_deep(body: bytes) -> bool:
    """Whether brackets outside strings nest deeper than MAX_JSON_DEPTH.

    In C-speed passes over the bytes (a few ms for 64 KiB, about what parsing takes), never a
    step per token in Python, so a body full of brackets costs no more to refuse than to parse.
    Exact for valid JSON; for anything else it may count brackets the parser never reaches
    (it stops at the first error), never fewer than it reaches.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False
    # In a string a backslash escapes the next byte, so backslashes pair up from the left:
    # without the escaped backslashes, then the escaped quotes, every quote left opens or closes
    # a string, and every other piece between two quotes is outside one. UTF-8 encodes no
    # other character with these bytes.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    depths = accumulate(array("b", outside.translate(_DEPTH_STEPS)))
    return max(depths, default=0) > MAX_JSON_DEPTH


def lone_surrogates(document: Any) -> list[Found]:
    """The lone surrogates among the first MAX_SEARCHED values of a parsed document, breadth
    first (the top-level fields before what is nested in them), without recursion.

    What lies under a key that holds one is not searched: no place reported holds a lone
    surrogate itself, so a 422 that names them can be written as UTF-8.
    """
    found: list[Found] = []
    pending: deque[tuple[Any, Location]] = deque([(document, ())])
    room = MAX_SEARCHED - 1  # how many more values may be looked at
    while pending:
        value, place = pending.popleft()
        if isinstance(value, str):
            if holds_lone_surrogate(value):
                found.append(Found(place))
            continue
        if isinstance(value, dict):
            children: Iterator[tuple[str | int, Any]] = islice(value.items(), room)
        elif isinstance(value, list):
            children = islice(enumerate(value), room)
        else:
            continue
        in_key = False
        for key, item in children:
            room -= 1
            if isinstance(key, str) and holds_lone_surrogate(key):
                in_key = True
            else:
                pending.append((item, (*place, key)))
        if in_key:
            found.append(Found(place, in_key=True))
    return found


def holds_lone_surrogate(text: str) -> bool:
    """Whether a decoded string holds a lone surrogate (a pair decodes to one character)."""
    return _SURROGATE.search(text) is not None


def without_lone_surrogates(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, as a decoder with errors="replace"."""
    return _SURROGATE.sub("\ufffd", text)


class JSONRequest(Request):
    """A request whose `json()` is `decode_json`, parsed once and kept."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


# Who is asking is answered before whether the body is malformed (401, then 403 for a token's
# scope, then 400): the app sets this to its authentication of a route, which raises its refusal.
AUTHENTICATE_ROUTE = "authenticate_route"


class JSONRoute(APIRoute):
    """Every route of the app: its handler, FastAPI's body reading included, gets a JSONRequest.

    FastAPI reads a route's body before it resolves the route's dependencies, so a body refused
    while it is decoded would be answered before the caller is authenticated: the refusal waits
    until the route's authentication (the app's `authenticate_route`) has had its say."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_json_request(request: Request) -> Response:
            json_request = JSONRequest(request.scope, request.receive, request._send)
            try:
                return await handle(json_request)
            except RefusedBody:
                authenticate = getattr(request.app.state, AUTHENTICATE_ROUTE, None)
                if authenticate is not None:
                    await authenticate(self, json_request)
                raise

        return handle_json_request
