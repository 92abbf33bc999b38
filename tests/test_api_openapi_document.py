"""The OpenAPI document itself: clean, stable operation ids, and an example on every JSON request body that
its own model accepts (so the examples cannot rot when a model changes)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import api.schemas
from api.app import create_app
from engine.storage.db import Database
from tests.test_api_support import make_settings

DEMO_SEASON = Path(__file__).parents[1] / "engine" / "demo_data" / "season.json"
ENTITY_FIELDS = ("responsible_entity", "entity", "supporting_entities", "attending")
METHODS = ("get", "post", "put", "patch", "delete")
PINNED = {
    ("post", "/api/v1/tasks/{task_id}/claim"): "claimTask",
    ("get", "/api/v1/tasks"): "listTasks",
    ("post", "/api/v1/directives"): "createDirective",
    ("post", "/api/v1/directives/{directive_id}/launch"): "launchDirective",
    ("post", "/api/v1/escalations/resolve"): "resolveEscalations",
    ("post", "/api/v1/auth/token"): "issueToken",
    ("get", "/api/v1/reports/{run_id}/{fmt}"): "downloadReport",
    ("get", "/livez"): "getLiveness",
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("openapi")
    url = f"sqlite:///{home / 'unused.db'}"  # the document is built without a query
    database = Database(url)
    try:
        yield create_app(make_settings(home, url), database=database).openapi()
    finally:
        database.dispose()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS]


def _models() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for info in pkgutil.iter_modules(api.schemas.__path__):
        module = importlib.import_module(f"api.schemas.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__:
                found[value.__name__] = value
    return found


def test_every_operation_has_a_clean_unique_id(document):
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) > 80
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    for operation_id in ids:
        assert "_api_v1_" not in operation_id and "api_v1" not in operation_id, operation_id
        assert not re.search(r"_(get|post|put|patch|delete)$", operation_id), operation_id
        assert re.fullmatch(r"[a-z][A-Za-z]+", operation_id), f"{operation_id} is not camelCase"


def test_a_few_ids_are_pinned(document):
    found = {(method, path): operation["operationId"] for method, path, operation in _operations(document)}
    assert {key: found.get(key) for key in PINNED} == PINNED


def test_form_bodies_are_named_after_their_operation(document):
    assert "Body_issueToken" in document["components"]["schemas"]


def _body_model(schema: dict[str, Any]) -> str:
    """The component a JSON body refers to (`RetryRequest | None` is an anyOf with null)."""
    for candidate in [schema, *schema.get("anyOf", [])]:
        if "$ref" in candidate:
            return candidate["$ref"].rsplit("/", 1)[1]
    raise AssertionError(f"a JSON body without a model: {schema}")


def json_bodies(document: dict[str, Any]) -> dict[str, list[str]]:
    """Each model used as a JSON request body, with the operations that take it."""
    bodies: dict[str, list[str]] = {}
    for _, _, operation in _operations(document):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            bodies.setdefault(_body_model(content["application/json"]["schema"]), []).append(operation["operationId"])
    return bodies


def test_every_json_request_body_has_an_example_its_model_accepts(document):
    bodies = json_bodies(document)
    assert len(bodies) >= 20
    models = _models()
    for name, operations in bodies.items():
        examples = document["components"]["schemas"][name].get("examples")
        assert examples, f"{name} (the body of {', '.join(operations)}) has no example"
        for example in examples:
            models[name].model_validate(example)  # raises, naming the field, when the example no longer fits


def test_the_examples_speak_of_the_demo_season(document):
    schemas = document["components"]["schemas"]
    directive = schemas["DirectiveCreate"]["examples"][0]
    assert directive["responsible_entity"] == "reception" and "مراكز الاستقبال" in directive["title"]
    assert schemas["MeetingCreate"]["examples"][0]["title_ar"].startswith("الاجتماع الدوري الأول للجنة الحج")


def test_the_entities_named_in_examples_exist_in_the_demo_season(document):
    codes = {entity["code"] for entity in json.loads(DEMO_SEASON.read_text(encoding="utf-8"))["entities"]}
    for name in json_bodies(document):
        for example in document["components"]["schemas"][name]["examples"]:
            for field in ENTITY_FIELDS:
                named = example.get(field) or []
                assert set([named] if isinstance(named, str) else named) <= codes, (name, field, named)
