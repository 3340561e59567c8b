"""/api/openapi.json describes what the API really takes and answers; /api/docs works with no internet."""

import json
import re

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    return client.get("/api/openapi.json").json()


def refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_every_reference_in_the_document_resolves(schema):
    components = schema["components"]["schemas"]
    missing = sorted({ref for ref in refs(schema) if ref.removeprefix("#/components/schemas/") not in components})
    assert missing == []


def test_the_launch_body_is_the_engines_config_schema_with_callbacks_and_trackers(schema):
    body = schema["paths"]["/api/executions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["title"] == "TrainingConfig"
    assert set(body["required"]) == {"experiment", "model", "dataset"}
    components = schema["components"]["schemas"]
    early = components["EarlyStopping"]
    assert early["properties"]["type"]["const"] == "early_stopping"
    assert early["additionalProperties"] is False
    assert {"patience", "monitor", "restore_best_weights"} <= set(early["properties"])
    assert components["MLflowSpec"]["properties"]["tracking_uri"]
    assert components["ExponentialDecayScheduler"]["required"] == ["schedule", "decay_rate", "type"]
    # OpenAPI wants a discriminator's mapping to name schemas: nested unions keep to oneOf.
    text = json.dumps(schema)
    for mapping in re.findall(r'"mapping": (\{[^{}]*\})', text):
        assert all(value.startswith("#/components/schemas/") for value in json.loads(mapping).values())


def test_each_operation_documents_the_answers_every_operation_can_give(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            answers = set(map(str, operation["responses"]))
            assert "401" in answers, (method, path)
            if "{" in path:
                assert "404" in answers, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in answers, (method, path)


def test_the_docs_page_loads_everything_from_this_server(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.content.decode())
    assert assets, assets
    assert all(asset.startswith("/static/") for asset in assets), assets
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
