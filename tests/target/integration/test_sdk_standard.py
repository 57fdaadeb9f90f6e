"""The Singer SDK's standard target tests against the emulator, each checking what landed.

The test streams are mapped by config onto two custom tables (``data/sdk-test-entities.json``):
streams keyed by an integer ``id`` write to ``new_sdkint`` (alternate key ``new_id``), streams
keyed by a string to ``new_sdktext`` (key ``new_key``). Fields the tables lack (arrays, nested
objects, Salesforce columns) are dropped with the one warning the target gives for them. Each
stream's ``columns`` holds only the fields every SCHEMA of that stream declares (a key naming
no field fails the stream).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from singer_sdk.testing import get_target_test_class, target_test_streams
from singer_sdk.testing.runners import TargetTestRunner
from singer_sdk.testing.suites import SingerTestSuite, target_tests
from singer_sdk.testing.target_tests import (
    TargetArrayData,
    TargetCamelcaseComplexSchema,
    TargetCamelcaseTest,
    TargetDuplicateRecords,
    TargetEncodedStringData,
    TargetNoPrimaryKeys,
    TargetOptionalAttributes,
    TargetPrimaryKeyUpdates,
    TargetRecordMissingKeyProperty,
    TargetRecordMissingOptionalFields,
    TargetSchemaNoProperties,
    TargetSchemaUpdates,
    TargetSpecialCharsInAttributes,
)

from dataverse_emulator.testing import running_emulator
from target_dynamics.reporting import LoadFailed
from target_dynamics.target import TargetDynamics

ENTITIES = Path(__file__).with_name("data") / "sdk-test-entities.json"
INT_COLUMNS = {
    "id": "new_id",
    "metric": "new_metric",
    "info": "new_info",
    "optional": "new_info",
    "name": "new_name",
    "email": "new_email",
    "a1": "new_number",
    "a2": "new_info",
    "a3": "new_flag",
}
TEXT_COLUMNS = {
    "Id": "new_key",
    "_id": "new_key",
    "clientName": "new_name",
    "IsDeleted": "new_deleted",
}
TEXT_STREAMS = ("TestCamelcase", "ForecastingTypeToCategory", "test:SpecialChars!in?attributes")
INT_STREAMS = (
    "test_array_data",
    "test_duplicate_records",
    "test_strings",
    "test_no_pk",
    "test_optional_attributes",
    "example_stream",
    "record_missing_fields",
    "test_object_schema_with_properties",
    "test_object_schema_no_properties",
    "test_schema_updates",
    "test_record_missing_key_property",
)


def declared_fields() -> dict[str, set[str]]:
    """Stream -> the fields every SCHEMA of it in the SDK's test files declares."""
    found: dict[str, set[str]] = {}
    for path in Path(target_test_streams.__file__).parent.glob("*.singer"):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("type") == "SCHEMA":
                fields = set((message.get("schema") or {}).get("properties") or {})
                stream = message["stream"]
                found[stream] = found[stream] & fields if stream in found else fields
    return found


def stream_settings() -> dict:
    fields = declared_fields()

    def columns(stream: str, mapping: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in mapping.items() if k in fields.get(stream, set())}

    streams = {
        name: {"entity": "new_sdkint", "columns": columns(name, INT_COLUMNS)}
        for name in INT_STREAMS
    }
    # Their `info` / `strings` are an object and an array, which no column here can carry.
    for name in ("test_strings_in_objects", "test_strings_in_arrays"):
        streams[name] = {"entity": "new_sdkint", "columns": {"id": "new_id"}}
    streams.update(
        {
            name: {"entity": "new_sdktext", "columns": columns(name, TEXT_COLUMNS)}
            for name in TEXT_STREAMS
        }
    )
    return streams


@pytest.fixture(scope="module")
def sdk_emulator():
    with running_emulator(latency="zero", entities_file=ENTITIES) as server:
        yield server


def rows(server, table: str) -> list[dict]:
    return server.admin.snapshot().get(table, [])


class _Validated:
    """Mix-in: the emulator of the run is ``self.resource``."""

    def by_id(self, table: str = "new_sdkint", key: str = "new_id") -> dict:
        return {row.get(key): row for row in rows(self.resource, table)}


class ArrayData(_Validated, TargetArrayData):
    def validate(self) -> None:
        assert sorted(self.by_id()) == [1, 2, 3, 4]


class CamelcaseComplexSchema(_Validated, TargetCamelcaseComplexSchema):
    def validate(self) -> None:
        """The file has two SCHEMA messages and no record: both map cleanly, nothing lands."""
        assert rows(self.resource, "new_sdktext") == []


class Camelcase(_Validated, TargetCamelcaseTest):
    def validate(self) -> None:
        landed = self.by_id("new_sdktext", "new_key")
        assert {row["new_name"] for row in landed.values()} >= {"Gitter Windows Desktop App"}


class DuplicateRecords(_Validated, TargetDuplicateRecords):
    def validate(self) -> None:
        """Upsert: the last record of each id wins."""
        assert {k: v["new_metric"] for k, v in self.by_id().items()} == {1: 100, 2: 20}


class RecordMissingKeyProperty(_Validated, TargetRecordMissingKeyProperty):
    def test(self) -> None:
        """Rejected like a record with a null key (not the SDK's run-ending error)."""
        with pytest.raises(LoadFailed, match="key property 'id' is missing from the record"):
            super(TargetRecordMissingKeyProperty, self).test()

    def validate(self) -> None:
        assert not rows(self.resource, "new_sdkint")


class EncodedStringData(_Validated, TargetEncodedStringData):
    def validate(self) -> None:
        landed = self.by_id()
        assert len(landed) >= 10
        assert all("new_info" in row for row in landed.values())


class NoPrimaryKeys(_Validated, TargetNoPrimaryKeys):
    def validate(self) -> None:
        """Without keys every record is a new row (random primary ids)."""
        assert len(rows(self.resource, "new_sdkint")) == 3


class OptionalAttributes(_Validated, TargetOptionalAttributes):
    def validate(self) -> None:
        landed = self.by_id()
        assert landed
        assert any("new_info" not in row or row["new_info"] is None for row in landed.values())


class PrimaryKeyUpdates(_Validated, TargetPrimaryKeyUpdates):
    def validate(self) -> None:
        assert rows(self.resource, "new_sdkint")


class RecordMissingFields(_Validated, TargetRecordMissingOptionalFields):
    def validate(self) -> None:
        assert len(self.by_id()) >= 2


class SchemaNoProperties(_Validated, TargetSchemaNoProperties):
    def validate(self) -> None:
        assert rows(self.resource, "new_sdkint")


class SchemaUpdates(_Validated, TargetSchemaUpdates):
    def validate(self) -> None:
        """`a3` comes with the second SCHEMA, so no `columns` key can name it: it is dropped."""
        landed = self.by_id()
        assert len(landed) == 6
        assert all(row.get("new_number") is not None for row in landed.values())
        assert all(row.get("new_flag") is None for row in landed.values())


class SpecialChars(_Validated, TargetSpecialCharsInAttributes):
    def validate(self) -> None:
        assert self.by_id("new_sdktext", "new_key")


VALIDATED = {
    cls.name: cls
    for cls in (
        ArrayData,
        CamelcaseComplexSchema,
        Camelcase,
        DuplicateRecords,
        EncodedStringData,
        NoPrimaryKeys,
        OptionalAttributes,
        PrimaryKeyUpdates,
        RecordMissingFields,
        RecordMissingKeyProperty,
        SchemaNoProperties,
        SchemaUpdates,
        SpecialChars,
    )
}
SUITE = SingerTestSuite(
    kind="target", tests=[VALIDATED.get(test.name, test) for test in target_tests.tests]
)
StandardTests = get_target_test_class(
    TargetDynamics,
    config={},
    custom_suites=[SUITE],
    include_target_tests=False,
    parse_env_config=False,
)


class TestStandardTargetTests(StandardTests):  # type: ignore[misc, valid-type]
    """Every standard test; the data tests check the rows the emulator holds afterwards."""

    @pytest.fixture
    def resource(self, sdk_emulator):
        sdk_emulator.admin.reset()
        return sdk_emulator

    @pytest.fixture
    def runner(self, sdk_emulator) -> TargetTestRunner:
        config = {
            **sdk_emulator.target_config,
            "streams": stream_settings(),
            "progress_interval_seconds": 0,
        }
        return TargetTestRunner(TargetDynamics, config=config, parse_env_config=False)


def test_suite_covers_every_standard_test():
    assert [t.name for t in SUITE.tests] == [t.name for t in target_tests.tests]
    assert json.loads(ENTITIES.read_text())["tables"]
