"""How routes reach the app: flat, each one a JSONRoute (its body decoded by the one decoder,
taskhub.http.bodies), and each one either public by name or authenticated by one of the
dependencies that declare what the route needs of a token.

A route that forgets to declare it fails closed: `require_authentication` refuses to let the app
start, once, at start-up, at no cost per request.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Collection, Iterator
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from taskhub.http.bodies import JSONRoute


class UnauthenticatedRoute(RuntimeError):
    """A route outside the public list does not depend on the auth dependency."""


def add_routes_of(app: FastAPI, router: APIRouter, prefix: str = "") -> None:
    """Add each of the router's path operations to the app itself, under the prefix, as
    `include_router` would serve it (the router's own lifespan is not carried over).

    Since FastAPI 0.137 an included router is one opaque route that every request walks, route
    by route with bookkeeping for each, to match and then again to dispatch; a route of the app's
    own is tried once, by its regex.
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):  # a nested router or a mount would be lost
            raise TypeError(f"{route!r} of {router!r}: only path operations can be added flat")
        app.router.add_api_route(prefix + route.path, route.endpoint, **_route_options(route))


def keep_static_paths_whole(app: FastAPI) -> None:
    """A path parameter never captures a static path of another route: `PATCH /projects/roles`
    is 405 with `Allow: GET`, not a project id that fails to parse (422).

    Starlette tries routes in order and takes the first whose regex and method match, so a
    parameter route (`/projects/{project_id}`) would take every method its static sibling
    (`/projects/roles`) lacks. Each parameter route's regex is narrowed once, at start-up, to
    refuse its siblings' exact paths; the router then finds only the sibling and answers 405.
    """
    static = [
        route.path for route in app.routes if isinstance(route, APIRoute) and "{" not in route.path
    ]
    for route in app.routes:
        if not isinstance(route, APIRoute) or "{" not in route.path:
            continue
        shadowed = [path for path in static if route.path_regex.match(path)]
        if shadowed:
            names = "|".join(re.escape(path) for path in shadowed)
            route.path_regex = re.compile(f"(?!(?:{names})$){route.path_regex.pattern}")


# What `add_api_route` takes that the route does not hold under the same name.
_NOT_ROUTE_OPTIONS = frozenset({"self", "path", "endpoint", "route_class_override"})


def _route_options(route: APIRoute) -> dict[str, Any]:
    """Every option the route was declared with, read back by name: an option a FastAPI upgrade
    adds is carried over too, or fails at start-up if the route keeps it under another name."""
    accepted = inspect.signature(APIRouter.add_api_route).parameters
    options = {name: getattr(route, name) for name in accepted if name not in _NOT_ROUTE_OPTIONS}
    return {**options, "route_class_override": _json_route_class(route)}


def _json_route_class(route: APIRoute) -> type[APIRoute]:
    """JSONRoute for a plain route; a route class of its own must build on JSONRoute."""
    if isinstance(route, JSONRoute):
        return type(route)
    if type(route) is APIRoute:
        return JSONRoute
    raise TypeError(
        f"{route!r}: a custom route class must derive from JSONRoute, so that its body is "
        "decoded the one way (taskhub.http.bodies)"
    )


def depends_on(route: APIRoute, dependency: Callable[..., Any]) -> bool:
    """Whether the route's dependency tree calls `dependency`."""
    return dependency in _calls(route.dependant)


def declared(route: APIRoute, among: Collection[Callable[..., Any]]) -> list[Callable[..., Any]]:
    """The dependencies of `among` that the route's dependency tree calls, each once."""
    return list(
        dict.fromkeys(
            call for call in _calls(route.dependant) if call is not None and call in among
        )
    )


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def require_authentication(
    app: FastAPI, *, public_paths: Collection[str], authenticators: Collection[Callable[..., Any]]
) -> None:
    """Refuse to start if any route outside `public_paths` can be reached without exactly one of
    `authenticators` (each declares what the route needs of a token): every route is
    login-required, and says which scope a token needs for it, unless it is listed as public."""
    for route in app.routes:
        path = getattr(route, "path", None)
        if path in public_paths:
            continue
        found = declared(route, authenticators) if isinstance(route, APIRoute) else []
        if len(found) != 1:
            raise UnauthenticatedRoute(
                f"route {path!r} is neither public nor authenticated with one declared need: "
                "give it `Annotated[Principal, needs(...)]` (a scope, SESSION or ANY_TOKEN), or "
                "add its path to the public list"
            )
