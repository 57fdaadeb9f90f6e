"""The compiled schema check agrees with jsonschema's Draft 2020-12 validator."""

from __future__ import annotations

import decimal

import pytest
from jsonschema.validators import Draft202012Validator

from target_dynamics.schemacheck import compile_check

SCHEMAS = [
    {"type": "string"},
    {"type": ["string", "null"]},
    {"type": "integer"},
    {"type": ["integer", "null"]},
    {"type": "number"},
    {"type": "boolean"},
    {"type": ["array", "object"]},
    {"type": "string", "format": "date-time"},
    {"type": ["string", "null"], "minLength": 2, "maxLength": 3},
    {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]},
    {"anyOf": [{"type": "null"}, {}]},
    {"type": "array", "items": {"type": ["integer", "null"]}},
    {"type": "array", "items": False},
    {"items": {"type": "string"}},
    {"title": "anything", "description": "annotations only", "x-sql-datatype": "text"},
    True,
    False,
    {
        "type": ["object", "null"],
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "free": {},
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    {"type": "object", "additionalProperties": {"type": "number"}},
    {"properties": {"a": {"type": "integer"}}},
    {"properties": {"a": {"type": "boolean", "title": "t"}, "b": {"type": ["string", "null"]}}},
]
VALUES = [
    None,
    True,
    False,
    0,
    1,
    -7,
    2**70,
    3.0,
    3.5,
    decimal.Decimal("3.0"),
    decimal.Decimal("2.25"),
    "",
    "ab",
    "abcd",
    "2024-01-02",
    [],
    [1, None],
    [1, "x"],
    ["x", "y"],
    [True],
    {},
    {"name": "n"},
    {"name": "n", "tags": ["a"], "free": [1, {"z": None}]},
    {"name": 5},
    {"name": "n", "tags": "a"},
    {"name": "n", "other": 1},
    {"a": 1.0, "b": 2},
    {"a": True},
    {"a": decimal.Decimal("1.5"), "b": "x"},
    {"a": 1, "b": None},
    {"a": False, "b": 2},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=str)
def test_check_agrees_with_jsonschema(schema):
    check = compile_check(schema)
    assert check is not None
    validator = Draft202012Validator(schema)
    for value in VALUES:
        assert check(value) is validator.is_valid(value), value


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "enum": ["a", "b"]},
        {"type": "string", "pattern": "^a"},
        {"properties": {"a": {"$ref": "#/$defs/a"}}, "$defs": {"a": {"type": "string"}}},
        {"type": "array", "prefixItems": [{"type": "string"}]},
        {"type": "object", "patternProperties": {"^x": {"type": "string"}}},
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]},
        {"type": "object", "unevaluatedProperties": False},
    ],
    ids=str,
)
def test_other_keywords_leave_validation_to_jsonschema(schema):
    assert compile_check(schema) is None


def test_nested_records():
    """Objects in arrays in objects: every level is checked."""
    schema = {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {"type": "object", "properties": {"qty": {"type": "integer"}}},
            }
        },
    }
    check = compile_check(schema)
    validator = Draft202012Validator(schema)
    for qty in (1, 1.5, "1", None):
        for count in (0, 1, 2):
            record = {"lines": [{"qty": 1}] * count + [{"qty": qty}]}
            assert check(record) is validator.is_valid(record), record
