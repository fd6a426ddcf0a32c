"""Routes reach the app flat, served exactly as `include_router` would serve them, and the app
refuses to start with a route that is neither public nor authenticated."""

from __future__ import annotations

import inspect

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from taskhub.config import Settings
from taskhub.http import health
from taskhub.http.bodies import JSONRoute
from taskhub.http.routing import UnauthenticatedRoute, add_routes_of
from taskhub.main import API_PREFIX, API_ROUTERS, PUBLIC_PATHS, create_app

COMPARED_OPTIONS = sorted(
    set(inspect.signature(APIRouter.add_api_route).parameters)
    - {"self", "path", "endpoint", "route_class_override", "form_limits"}
)


def included_the_usual_way() -> FastAPI:
    reference = FastAPI()
    api = APIRouter(prefix=API_PREFIX)
    for router in API_ROUTERS:
        api.include_router(router)
    reference.include_router(api)
    reference.include_router(health.router)
    return reference


def added_flat() -> FastAPI:
    application = FastAPI()
    for router in API_ROUTERS:
        add_routes_of(application, router, prefix=API_PREFIX)
    add_routes_of(application, health.router)
    return application


def test_flat_routes_match_included_ones_option_for_option() -> None:
    reference, application = included_the_usual_way(), added_flat()
    expected = [
        context
        for context in iter_route_contexts(reference.routes)
        if isinstance(context.original_route, APIRoute)
    ]
    actual = [route for route in application.routes if isinstance(route, APIRoute)]
    assert [context.path_format for context in expected] == [route.path for route in actual]
    for context, route in zip(expected, actual, strict=True):
        # The same route class, but built on JSONRoute: bodies are decoded the one way.
        assert type(context.original_route) is APIRoute
        assert type(route) is JSONRoute
        assert route.endpoint is context.endpoint
        assert route.unique_id == context.unique_id
        assert route.dependency_overrides_provider is application
        assert context.dependency_overrides_provider is reference
        # An included route parses forms with its own limits: the inclusion keeps no copy.
        assert route.form_limits == context.original_route.form_limits
        for option in COMPARED_OPTIONS:
            assert getattr(route, option) == getattr(context, option), (route.path, option)


def test_every_route_of_the_app_decodes_bodies_the_one_way(settings: Settings) -> None:
    application = create_app(settings)

    @application.post("/added-later")
    async def added_later() -> None: ...

    routes = [route for route in application.routes if isinstance(route, APIRoute)]
    assert len(routes) > 10
    assert [route.path for route in routes if not isinstance(route, JSONRoute)] == []


def test_a_route_class_of_its_own_must_build_on_json_route() -> None:
    class Mine(JSONRoute):
        pass

    class Other(APIRoute):
        pass

    kept = APIRouter(route_class=Mine)
    kept.add_api_route("/mine", health.health)
    application = FastAPI()
    add_routes_of(application, kept)
    assert type(application.routes[-1]) is Mine

    refused = APIRouter(route_class=Other)
    refused.add_api_route("/other", health.health)
    with pytest.raises(TypeError, match="JSONRoute"):
        add_routes_of(FastAPI(), refused)


def test_a_nested_router_is_refused_rather_than_dropped() -> None:
    outer, inner = APIRouter(), APIRouter()
    inner.add_api_route("/inner", health.health)
    outer.include_router(inner)
    with pytest.raises(TypeError, match="only path operations"):
        add_routes_of(FastAPI(), outer)


def _forgetful_router() -> APIRouter:
    forgetful = APIRouter(prefix="/forgetful")

    @forgetful.get("")
    async def read_without_a_principal() -> dict[str, str]:
        return {"leaked": "yes"}

    return forgetful


def test_start_up_refuses_a_route_without_the_auth_dependency(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setattr("taskhub.main.API_ROUTERS", (*API_ROUTERS, _forgetful_router()))
    with pytest.raises(UnauthenticatedRoute, match="/api/v1/forgetful"):
        create_app(settings)


def test_every_route_of_the_app_is_public_by_name_or_authenticated(settings: Settings) -> None:
    """The same check passes on the real route table (it ran inside create_app)."""
    application = create_app(settings)
    paths = {getattr(route, "path", None) for route in application.routes}
    assert f"{API_PREFIX}/tasks" in paths
    assert f"{API_PREFIX}/auth/login" in PUBLIC_PATHS
    assert f"{API_PREFIX}/tasks" not in PUBLIC_PATHS
