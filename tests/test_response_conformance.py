"""The conformance check every test client runs (tests/conformance.py, installed by
`tests.conftest.client_of`): a hand-rendered 2xx JSON body must be what the route's
response_model renders. These tests show it can fail, and what it leaves alone.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi import APIRouter, FastAPI, Response
from pydantic import BaseModel

from taskhub.schemas import UTCTimestamp
from tests.conformance import serving_route
from tests.conftest import client_of
from tests.helpers import API, ApiUser


class Thing(BaseModel):
    id: int
    name: str
    seen_at: UTCTimestamp | None = None


class ThingPage(BaseModel):
    items: list[Thing]


def raw(body: object, status_code: int = 200, media_type: str = "application/json") -> Response:
    """A body written by hand, as TaskHub's routes write theirs: FastAPI does not check it."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status_code, media_type=media_type)


def app_sending(body: object, **response: Any) -> FastAPI:
    """An app whose one route declares `Thing` and sends `body` as it is."""
    application = FastAPI()

    @application.get("/thing", response_model=Thing)
    async def thing() -> Response:
        return raw(body, **response)

    return application


async def flagged(application: FastAPI, path: str = "/thing") -> str:
    """The failure the client reports for GET `path`: the request raises, and the client fails
    again on leaving, for a test that swallowed the first AssertionError."""
    with pytest.raises(AssertionError, match="did not conform") as on_exit:  # noqa: PT012 - closing is under test
        async with client_of(application) as http:
            with pytest.raises(AssertionError, match="nonconforming response") as on_request:
                await http.get(path)
    assert f"GET {path} -> " in str(on_exit.value)
    return str(on_request.value)


async def passes(application: FastAPI, path: str = "/thing") -> httpx.Response:
    async with client_of(application) as http:
        return await http.get(path)


class TestFlagged:
    async def test_a_missing_required_field(self) -> None:
        message = await flagged(app_sending({"id": 1}))

        assert "does not validate as Thing" in message
        assert "name: Field required" in message

    async def test_a_field_of_the_wrong_type(self) -> None:
        message = await flagged(app_sending({"id": "seven", "name": "x"}))

        assert "id: Input should be a valid integer" in message

    async def test_a_field_the_model_does_not_have(self) -> None:
        body = {"id": 1, "name": "x", "password_hash": "not-for-clients"}

        message = await flagged(app_sending(body))

        assert "(body).password_hash is not in the model" in message

    async def test_a_value_the_model_would_have_coerced(self) -> None:
        message = await flagged(app_sending({"id": "7", "name": "x"}))

        assert "(body).id is '7', the model renders 7" in message

    async def test_a_timestamp_not_written_in_utc(self) -> None:
        body = {"id": 1, "name": "x", "seen_at": "2026-12-01T10:00:00+01:00"}

        message = await flagged(app_sending(body))

        assert "'2026-12-01T09:00:00Z'" in message

    async def test_an_item_deep_in_a_page(self) -> None:
        application = FastAPI()

        @application.get("/things", response_model=ThingPage)
        async def things() -> Response:
            return raw({"items": [{"id": 1, "name": "a"}, {"id": 2}]})

        message = await flagged(application, "/things")

        assert "items.1.name: Field required" in message

    async def test_a_201_as_well_as_a_200(self) -> None:
        assert "name: Field required" in await flagged(app_sending({"id": 1}, status_code=201))

    async def test_a_route_of_an_included_router(self) -> None:
        application = FastAPI()
        router = APIRouter(prefix="/v1")

        @router.get("/thing/{thing_id}", response_model=Thing)
        async def thing(thing_id: uuid.UUID) -> Response:
            return raw({"id": 1})

        application.include_router(router)

        message = await flagged(application, f"/v1/thing/{uuid.uuid4()}")

        assert "name: Field required" in message


class TestLeftAlone:
    async def test_a_conforming_body(self) -> None:
        body = {"id": 1, "name": "x", "seen_at": "2026-12-01T09:00:00Z"}

        assert (await passes(app_sending(body))).json() == body

    async def test_a_body_that_fastapi_rendered_itself(self) -> None:
        application = FastAPI()

        @application.get("/thing", response_model=Thing)
        async def thing() -> dict[str, object]:
            return {"id": 1, "name": "x", "dropped": True}

        assert (await passes(application)).json() == {"id": 1, "name": "x", "seen_at": None}

    @pytest.mark.parametrize(
        ("body", "response"),
        [
            pytest.param({"status": 404}, {"status_code": 404}, id="an error"),
            pytest.param(
                {"id": 1}, {"media_type": "application/problem+json"}, id="another media type"
            ),
            pytest.param(b"id=1", {"media_type": "text/plain"}, id="not JSON"),
        ],
    )
    async def test_a_response_the_model_does_not_describe(
        self, body: object, response: dict[str, Any]
    ) -> None:
        await passes(app_sending(body, **response))

    async def test_a_route_without_a_response_model(self) -> None:
        application = FastAPI()

        @application.get("/anything")
        async def anything() -> Response:
            return raw({"whatever": datetime(2026, 1, 1).isoformat()})

        assert (await passes(application, "/anything")).status_code == 200


class TestServingRoute:
    def test_is_the_route_the_router_picks_by_method_and_path(self, app: FastAPI) -> None:
        task = f"{API}/tasks/{uuid.uuid4()}"

        found = {
            method: getattr(serving_route(app, method, task), "name", None)
            for method in ("GET", "PATCH", "DELETE", "PUT")
        }

        assert found == {
            "GET": "get_task",
            "PATCH": "update_task",
            "DELETE": "delete_task",
            "PUT": None,
        }
        assert serving_route(app, "GET", f"{task}/elsewhere") is None
        assert serving_route(app, "GET", "/openapi.json") is None  # not a path operation


async def test_taskhubs_own_responses_conform(client: httpx.AsyncClient, alice: ApiUser) -> None:
    """The suite's client carries the check, and a rendered resource passes it."""
    names = [hook.__name__ for hook in client.event_hooks["response"]]
    assert names == ["scan_for_leaks", "check_conformance"]

    response = await client.get(f"{API}/users/me", headers=alice.headers)

    assert response.status_code == 200
