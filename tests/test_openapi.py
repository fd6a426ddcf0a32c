"""/openapi.json describes the whole v1 contract, errors included, as clients will read it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from taskhub.main import create_app
from tests.conftest import client_of, make_settings
from tests.helpers import assert_problem, make_user, register

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
SCHEME = "OAuth2PasswordBearer"

# (method, path with every path parameter written {id}) -> statuses the contract says it returns
CONTRACT: dict[tuple[str, str], set[int]] = {
    ("post", "/api/v1/auth/register"): {201, 400, 409, 413, 415, 422},
    ("post", "/api/v1/auth/login"): {200, 400, 401, 413, 415, 422},
    ("post", "/api/v1/auth/refresh"): {200, 400, 401, 413, 415, 422},
    ("post", "/api/v1/auth/logout"): {204, 401},
    ("get", "/api/v1/users/me"): {200, 401},
    ("delete", "/api/v1/users/me"): {204, 401},
    ("post", "/api/v1/users/me/password"): {204, 400, 401, 413, 415, 422},
    ("get", "/api/v1/users/me/sessions"): {200, 401},
    ("delete", "/api/v1/users/me/sessions/{id}"): {204, 401, 404, 422},
    ("post", "/api/v1/tasks"): {201, 400, 401, 413, 415, 422},
    ("get", "/api/v1/tasks"): {200, 401, 422},
    ("get", "/api/v1/tasks/{id}"): {200, 401, 404, 422},
    ("patch", "/api/v1/tasks/{id}"): {200, 400, 401, 404, 413, 415, 422},
    ("delete", "/api/v1/tasks/{id}"): {204, 401, 404, 422},
    # added 2026-11-30: comments
    ("get", "/api/v1/tasks/{id}/comments"): {200, 401, 404, 422},
    ("post", "/api/v1/tasks/{id}/comments"): {201, 400, 401, 403, 404, 413, 415, 422},
    ("patch", "/api/v1/comments/{id}"): {200, 400, 401, 403, 404, 413, 415, 422},
    ("delete", "/api/v1/comments/{id}"): {204, 401, 403, 404, 422},
}
PUBLIC = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
}
OPERATIONS = {("get", "/health"): {200}, ("get", "/ready"): {200, 503}}
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}
# camelCase, as client generators turn it into `list_tasks` or `listTasks`; short enough to type
OPERATION_ID = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*")
MAX_OPERATION_ID = 32


def contract_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{id}", path)


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, contract_path(path)): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture
def ops(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return operations(document)


@pytest.fixture
async def docs_disabled_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    application: FastAPI = create_app(make_settings(database_url, DOCS_ENABLED=False))
    async with client_of(application) as http:
        yield http
    await application.state.database.dispose()


class TestOperations:
    def test_lists_every_api_v1_operation_of_the_contract(
        self, ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        missing = set(CONTRACT) - set(ops)

        assert missing == set()

    def test_lists_health_and_ready(self, ops: dict[tuple[str, str], dict[str, Any]]) -> None:
        assert set(OPERATIONS) <= set(ops)

    def test_every_operation_has_a_unique_id_and_a_summary(
        self, ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        ids = [operation["operationId"] for operation in ops.values()]

        assert len(ids) == len(set(ids))
        for key, operation in ops.items():
            assert operation.get("summary") or operation.get("description"), key

    def test_every_operation_id_is_its_route_functions_name_in_camel_case(
        self, app: FastAPI, document: dict[str, Any]
    ) -> None:
        documented = 0
        for route in app.routes:
            if not (isinstance(route, APIRoute) and route.include_in_schema):
                continue
            for method in route.methods:
                operation_id = document["paths"][route.path_format][method.lower()]["operationId"]
                documented += 1

                assert OPERATION_ID.fullmatch(operation_id), (route.name, operation_id)
                assert operation_id.lower() == route.name.replace("_", "").lower(), route.name
                assert len(operation_id) <= MAX_OPERATION_ID, operation_id
        assert documented == len(operations(document))

    @pytest.mark.parametrize(
        ("method", "path", "expected"),
        [
            ("post", "/api/v1/auth/register", "registerUser"),
            ("post", "/api/v1/auth/login", "login"),
            ("post", "/api/v1/auth/refresh", "refreshTokens"),
            ("get", "/api/v1/users/me", "readCurrentUser"),
            ("get", "/api/v1/tasks", "listTasks"),
            ("delete", "/api/v1/tasks/{id}", "deleteTask"),
            ("post", "/api/v1/notifications/{id}/read", "markNotificationRead"),
            ("get", "/health", "health"),
        ],
    )
    def test_operation_ids_are_short_and_stable(
        self, ops: dict[tuple[str, str], dict[str, Any]], method: str, path: str, expected: str
    ) -> None:
        assert ops[method, path]["operationId"] == expected


class TestStatusCodes:
    @pytest.mark.parametrize("key", sorted({**CONTRACT, **OPERATIONS}), ids=" ".join)
    def test_documents_each_status_the_operation_can_return(
        self, ops: dict[tuple[str, str], dict[str, Any]], key: tuple[str, str]
    ) -> None:
        expected = {**CONTRACT, **OPERATIONS}[key]

        documented = {int(status) for status in ops[key]["responses"]}

        assert expected <= documented

    def test_every_api_operation_documents_500_and_503(
        self, ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        for key in CONTRACT:
            assert {"500", "503"} <= set(ops[key]["responses"]), key

    def test_protected_operations_document_401(
        self, ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        for key in set(CONTRACT) - PUBLIC:
            assert "401" in ops[key]["responses"], key

    def test_id_routes_document_404_and_422(
        self, ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        for key in (k for k in CONTRACT if "{id}" in k[1]):
            assert {"404", "422"} <= set(ops[key]["responses"]), key

    def test_operations_with_input_document_422(
        self, ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        for key, operation in ops.items():
            if operation.get("requestBody") or operation.get("parameters"):
                assert "422" in operation["responses"], key

    def test_operations_with_a_body_document_400_413_and_415(
        self, ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        for key, operation in ops.items():
            if operation.get("requestBody"):
                assert {"400", "413", "415"} <= set(operation["responses"]), key

    def test_every_error_response_is_a_problem_document(
        self, ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        for key, operation in ops.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert response["content"] == {PROBLEM_JSON: {"schema": PROBLEM_REF}}, (
                        key,
                        status,
                    )

    def test_204_responses_have_no_body(self, ops: dict[tuple[str, str], dict[str, Any]]) -> None:
        for key, operation in ops.items():
            if "204" in operation["responses"]:
                assert not operation["responses"]["204"].get("content"), key


class TestSchemas:
    def test_problem_schema_has_the_rfc_9457_members(self, document: dict[str, Any]) -> None:
        problem = document["components"]["schemas"]["Problem"]

        assert {"type", "title", "status"} <= set(problem["required"])
        assert {"type", "title", "status", "detail", "errors", "request_id"} <= set(
            problem["properties"]
        )
        item = problem["properties"]["errors"]["items"]["properties"]
        assert set(item) == {"loc", "msg", "type"}

    def test_fastapis_own_validation_error_schema_is_gone(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]

        assert "HTTPValidationError" not in schemas
        assert "ValidationError" not in schemas

    def test_every_reference_resolves(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]

        for ref in refs(document):
            assert ref.startswith("#/components/schemas/"), ref
            assert ref.removeprefix("#/components/schemas/") in schemas, ref

    def test_user_schema_says_nothing_about_the_password(self, document: dict[str, Any]) -> None:
        user = document["paths"]["/api/v1/users/me"]["get"]["responses"]["200"]["content"]
        ref = user["application/json"]["schema"]["$ref"].removeprefix("#/components/schemas/")

        assert set(document["components"]["schemas"][ref]["properties"]) == {
            "id",
            "username",
            "created_at",
        }

    def test_register_documents_the_username_rule(self, document: dict[str, Any]) -> None:
        username = document["components"]["schemas"]["UserRegister"]["properties"]["username"]

        assert (username["minLength"], username["maxLength"]) == (3, 32)
        assert re.fullmatch(username["pattern"], "Al.ice_-9")
        assert not re.fullmatch(username["pattern"], "al ice")

    @pytest.mark.parametrize(
        ("schema", "field"), [("UserRegister", "password"), ("PasswordChange", "new_password")]
    )
    def test_new_passwords_document_the_default_minimum_length(
        self, document: dict[str, Any], schema: str, field: str
    ) -> None:
        password = document["components"]["schemas"][schema]["properties"][field]

        assert password["minLength"] == 8
        assert "maxLength" not in password  # the limit is 72 bytes, which JSON Schema cannot say

    def test_new_passwords_document_the_configured_minimum_length(self, database_url: str) -> None:
        schemas = create_app(make_settings(database_url, PASSWORD_MIN_LENGTH=12)).openapi()[
            "components"
        ]["schemas"]

        assert schemas["UserRegister"]["properties"]["password"]["minLength"] == 12
        assert schemas["PasswordChange"]["properties"]["new_password"]["minLength"] == 12

    async def test_a_short_password_still_gets_the_rules_message(
        self, client: httpx.AsyncClient
    ) -> None:
        body = assert_problem(await register(client, "alice", "zq8-vk3"), 422)

        assert body["errors"][0]["msg"] == "must be at least 8 characters long"

    async def test_refresh_token_documents_the_jwt_form_that_login_issues(
        self, client: httpx.AsyncClient, document: dict[str, Any]
    ) -> None:
        schema = document["components"]["schemas"]["RefreshRequest"]["properties"]
        user = await make_user(client, "alice")

        assert re.fullmatch(schema["refresh_token"]["pattern"], user.refresh_token)
        assert not re.fullmatch(schema["refresh_token"]["pattern"], "a.b\x00.c")


class TestLogin:
    def test_documents_both_form_and_json_bodies(
        self, document: dict[str, Any], ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        body = ops["post", "/api/v1/auth/login"]["requestBody"]
        content = body["content"]

        assert body["required"] is True
        form_ref = content["application/x-www-form-urlencoded"]["schema"]["$ref"]
        assert form_ref == "#/components/schemas/LoginForm"
        form = document["components"]["schemas"]["LoginForm"]
        assert {"username", "password"} <= set(form["required"])
        assert {"grant_type", "scope", "client_id", "client_secret"} <= set(form["properties"])
        json_ref = content["application/json"]["schema"]["$ref"]
        login_json = document["components"]["schemas"][json_ref.rsplit("/", 1)[-1]]
        assert set(login_json["required"]) == {"username", "password"}

    def test_the_form_schema_says_what_the_route_accepts(self, document: dict[str, Any]) -> None:
        form = document["components"]["schemas"]["LoginForm"]
        properties = form["properties"]

        assert set(form["required"]) == {"username", "password"}
        assert properties["username"]["minLength"] == properties["password"]["minLength"] == 1
        assert properties["password"]["format"] == properties["client_secret"]["format"]
        assert properties["client_secret"]["format"] == "password"
        # Optional OAuth2 fields are absent when not sent: a form field cannot be null.
        for name in ("grant_type", "scope", "client_id", "client_secret"):
            assert properties[name]["type"] == "string", name
            assert "default" not in properties[name], name
        # Other form fields are ignored, not refused.
        assert form.get("additionalProperties", True) is not False

    def test_returns_the_token_pair(self, ops: dict[tuple[str, str], dict[str, Any]]) -> None:
        ok = ops["post", "/api/v1/auth/login"]["responses"]["200"]

        assert "application/json" in ok["content"]


class TestSecurity:
    def test_declares_the_oauth2_password_scheme(self, document: dict[str, Any]) -> None:
        scheme = document["components"]["securitySchemes"][SCHEME]

        assert scheme["type"] == "oauth2"
        assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/login"

    def test_protected_operations_require_the_scheme(
        self, ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        for key in set(CONTRACT) - PUBLIC:
            assert {SCHEME: []} in ops[key].get("security", []), key

    def test_public_operations_require_nothing(
        self, ops: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        for key in PUBLIC | set(OPERATIONS):
            assert not ops[key].get("security"), key


class TestDocsDisabled:
    async def test_removes_openapi_json(self, docs_disabled_client: httpx.AsyncClient) -> None:
        response = await docs_disabled_client.get("/openapi.json")

        assert_problem(response, 404)

    async def test_removes_docs(self, docs_disabled_client: httpx.AsyncClient) -> None:
        assert_problem(await docs_disabled_client.get("/docs"), 404)

    async def test_leaves_the_api_alone(self, docs_disabled_client: httpx.AsyncClient) -> None:
        assert (await docs_disabled_client.get("/health")).status_code == 200
