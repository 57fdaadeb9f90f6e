"""The emulator's error catalogue: one named constructor per Dataverse failure.

Each returns a :class:`DataverseFault` with the code and message Dataverse answers with; ``wire``
maps its kind to the HTTP status (``wire/errors.py``). Codes are HRESULTs as listed on Microsoft
Learn's "Web service error codes" page
(https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes);
the ``§n.m`` in each docstring is the section of ``docs/dataverse.md`` that records the answer.
Grouped by code; the emulator builds no ``DataverseFault`` outside this module except the faults
a test configures itself (record rules).
"""

from __future__ import annotations

import typing as t

from dataverse_emulator.state.errors import DataverseFault, Kind

if t.TYPE_CHECKING:
    from dataverse_emulator.state.catalog import Column, Table

NAMESPACE = "Microsoft.Dynamics.CRM."
"""The namespace of every Dataverse entity type (``Microsoft.Dynamics.CRM.<logical name>``)."""
HELP_LINK = "https://go.microsoft.com/fwlink/?linkid=2195293"
VALIDATING = "An error occurred while validating input parameters: Microsoft.OData.ODataException: "
"""The prefix of every action-parameter validation message."""

INVALID_ARGUMENT = "0x80040203"
"""InvalidArgument: the generic code for a rejected value or metadata change."""
OBJECT_DOES_NOT_EXIST = "0x80040217"
"""ObjectDoesNotExist: a row or metadata item that is not there."""
DUPLICATE_RECORD = "0x80040237"
"""DuplicateRecord: a row (or association) that already exists."""
PRIVILEGE_DENIED = "0x80040220"
"""PrivilegeDenied: the caller's role lacks a privilege."""
RESOURCE_NOT_FOUND = "0x80060888"
"""The OData layer's code for an address or method it cannot route (§2.1)."""
PAYLOAD_ERROR = "0x80048d19"
"""ODataClientPayloadError: a request body the OData reader refuses (§4.9)."""
ODATA_ERROR = "0x0"
"""The code of errors the OData library raises before Dataverse sees the request (§4.9)."""

ALREADY_EXISTS = "A record with matching key values already exists."
STALE_VERSION = "The version of the existing record doesn't match the RowVersion property provided."
UNDECLARED_PROPERTY = (
    f"{VALIDATING}An undeclared property '{{name}}' which only has property annotations in the "
    "payload but no property value was found in the payload. In OData, only declared navigation "
    "properties and declared named streams can be represented as properties without values."
)


# ---- 0x80060888: addresses and methods the service cannot route -------------------------------


def segment_not_found(segment: str) -> DataverseFault:
    """404 ``0x80060888`` "Resource not found for the segment '<x>'." (§2.1)."""
    return DataverseFault(
        Kind.NOT_FOUND, RESOURCE_NOT_FOUND, f"Resource not found for the segment '{segment}'."
    )


def method_not_allowed(method: str) -> DataverseFault:
    """405 ``0x80060888`` for a method the resource does not support (§2.5)."""
    return DataverseFault(
        Kind.METHOD_NOT_ALLOWED,
        RESOURCE_NOT_FOUND,
        f"The requested resource does not support http method '{method}'.",
    )


def invalid_batch_url(url: str) -> DataverseFault:
    """400 ``0x80060888`` for a ``$batch`` part whose URL is not a service path (§2.6, §5.1)."""
    return DataverseFault(Kind.BAD_REQUEST, RESOURCE_NOT_FOUND, f"Invalid URL '{url}'.")


def invalid_key(table: Table) -> DataverseFault:
    """400 ``0x80060888`` for key properties that match no alternate key of the table (§4.3)."""
    name = f"{NAMESPACE}{table.logical_name}"
    return DataverseFault(
        Kind.BAD_REQUEST,
        RESOURCE_NOT_FOUND,
        f"The key in the request URI is not valid for resource '{name}'. Ensure that the names "
        "and number of key properties match the declared or alternate key properties for the "
        f"resource '{name}'.",
    )


def lookup_value_written() -> DataverseFault:
    """400 ``0x80060888``: a write to the computed ``_<lookup>_value`` (§4.6, "Lookup (read)")."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        RESOURCE_NOT_FOUND,
        "CRM do not support direct update of Entity Reference properties, "
        "Use Navigation properties instead.",
    )


def metadata_address(collection: str, keys: str) -> DataverseFault:
    """400 ``0x80060888`` for a metadata key other than ``keys``, e.g. ``MetadataId`` (§3.1)."""
    return DataverseFault(
        Kind.BAD_REQUEST, RESOURCE_NOT_FOUND, f"{collection} is addressed by {keys}."
    )


def reference_body_invalid() -> DataverseFault:
    """400 ``0x80060888``: a ``$ref`` POST body without ``@odata.id`` (§4.7)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        RESOURCE_NOT_FOUND,
        "The request body of a $ref POST must be a JSON object with an '@odata.id' member "
        'addressing the related row, e.g. {"@odata.id": "contacts(<guid>)"}.',
    )


def reference_row_missing() -> DataverseFault:
    """400 ``0x80060888``: a collection ``$ref`` DELETE that names no related row (§4.7)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        RESOURCE_NOT_FOUND,
        "A $ref DELETE on a collection-valued navigation property needs the related row: "
        "'{nav}(<id>)/$ref' or '{nav}/$ref?$id=<url of the row>'.",
    )


# ---- 0x8006088a and 0x0: the OData layer --------------------------------------------------------


def syntax_error() -> DataverseFault:
    """400 ``0x8006088a`` "Bad Request - Error in query syntax." (a malformed key, §4.3)."""
    return DataverseFault(Kind.BAD_REQUEST, "0x8006088a", "Bad Request - Error in query syntax.")


def property_not_found(name: str, type_name: str) -> DataverseFault:
    """400 ``0x0`` "Could not find a property named '<name>' on type '…<type_name>'." (§4.9)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        ODATA_ERROR,
        f"Could not find a property named '{name}' on type '{NAMESPACE}{type_name}'.",
    )


def content_id_missing(reference: str) -> DataverseFault:
    """400 ``0x0`` for a ``$n`` that no earlier change-set operation declared (§5.2)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        ODATA_ERROR,
        f"Content-ID Reference: '{reference}' does not exist in the batch context.",
    )


def undeclared_annotation(name: str) -> DataverseFault:
    """400 ``0x0``: ``<name>@odata.bind`` where ``name`` is no navigation property (§4.7)."""
    return DataverseFault(Kind.BAD_REQUEST, ODATA_ERROR, UNDECLARED_PROPERTY.format(name=name))


def parameter_missing(name: str, type_name: str) -> DataverseFault:
    """400 ``0x0``: an action parameter that is absent or of the wrong shape (§6.1)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        ODATA_ERROR,
        f"{VALIDATING}The parameter '{name}' of type '{type_name}' is missing or invalid.",
    )


def untyped_resource() -> DataverseFault:
    """400 ``0x0``: an action parameter entity without ``@odata.type`` (§6.1)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        ODATA_ERROR,
        VALIDATING + "A resource without a type name was found, but no expected type was "
        "specified. To allow entries without type information, the expected type must also "
        "be specified when the model is specified.",
    )


def unresolved_type(type_name: str) -> DataverseFault:
    """400 ``0x0``: an ``@odata.type`` that names no entity type (§6.1)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        ODATA_ERROR,
        VALIDATING + f"A type named '{type_name}' could not be resolved by the model. "
        "When a model is available, each type name must resolve to a valid type.",
    )


# ---- 0x80048d19: ODataClientPayloadError ----------------------------------------------------


def payload_error(table: Table, inner: str) -> DataverseFault:
    """400 ``0x80048d19`` ODataClientPayloadError wrapping ``inner`` (§4.9)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        PAYLOAD_ERROR,
        f"Error identified in Payload provided by the user for Entity :'{table.entity_set_name}', "
        f"For more information on this error please follow this help link {HELP_LINK} ----> "
        f"InnerException : {inner}",
    )


def unknown_property(table: Table, name: str) -> DataverseFault:
    """400 ``0x80048d19``: a body member that is no property of the entity type (§4.9)."""
    return payload_error(
        table,
        f"Microsoft.Crm.CrmException: Invalid property '{name}' was found in entity "
        f"'{NAMESPACE}{table.logical_name}'. ---> Microsoft.OData.ODataException: "
        "Does not support untyped value in non-open type.",
    )


def value_member_missing() -> DataverseFault:
    """400 ``0x80048d19``: a single-property PUT body without ``value`` (§4.2)."""
    return DataverseFault(
        Kind.BAD_REQUEST, PAYLOAD_ERROR, "The request body must contain a 'value' member."
    )


def navigation_value_invalid(prop: str) -> DataverseFault:
    """400 ``0x80048d19``: a navigation property whose value is no entity reference (§4.7)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        PAYLOAD_ERROR,
        f"Invalid value for navigation property '{prop}': expected an entity reference.",
    )


def parameters_invalid_json(detail: object) -> DataverseFault:
    """400 ``0x80048d19``: an action body that is not JSON (§2.6)."""
    return DataverseFault(Kind.BAD_REQUEST, PAYLOAD_ERROR, f"{VALIDATING}Invalid JSON. {detail}")


def parameters_not_object() -> DataverseFault:
    """400 ``0x80048d19``: an action body that is JSON but not an object (§2.6)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        PAYLOAD_ERROR,
        f"{VALIDATING}An unexpected 'StartArray' node was found when reading from the JSON "
        "reader. A 'StartObject' node was expected.",
    )


# ---- 0x80040203: InvalidArgument ------------------------------------------------------------


def invalid_argument(message: str) -> DataverseFault:
    """400 ``0x80040203`` InvalidArgument with ``message`` (metadata changes, §3.6)."""
    return DataverseFault(Kind.BAD_REQUEST, INVALID_ARGUMENT, message)


def metadata_body_invalid_json(detail: object) -> DataverseFault:
    """400 ``0x80040203``: a metadata POST body that is not JSON (§3.6)."""
    return invalid_argument(f"Invalid JSON body: {detail}")


def metadata_body_not_object() -> DataverseFault:
    """400 ``0x80040203``: a metadata POST body that is not a JSON object (§3.6)."""
    return invalid_argument("The body must be a JSON object.")


def key_definition_incomplete() -> DataverseFault:
    """400 ``0x80040203``: an ``EntityKeyMetadata`` without its name or columns (§3.6)."""
    return invalid_argument("An EntityKeyMetadata needs a SchemaName and a KeyAttributes list.")


def table_exists(table: Table) -> DataverseFault:
    """400 ``0x80040203``: a new table whose name or entity set is taken (§3.1)."""
    return invalid_argument(
        f"A table named '{table.logical_name}' or with entity set "
        f"'{table.entity_set_name}' already exists."
    )


def action_parameters_missing(action: str, parameters: t.Sequence[str]) -> DataverseFault:
    """400 ``0x80040203``: an action called without its string parameters (§3.6)."""
    return invalid_argument(f"{action} needs the string parameters {' and '.join(parameters)}.")


def invalid_optional_header(name: str, value: str, valid: str) -> DataverseFault:
    """400 ``0x80040203``: an optional header with a value it does not take (§8)."""
    return invalid_argument(
        f"Invalid value '{value}' for the optional parameter {name}; valid values: {valid}."
    )


def not_valid_for(table: Table, column: Column, operation: str) -> DataverseFault:
    """400 ``0x80040203``: a column whose ``IsValidForCreate`` / ``…Update`` is false (§4.6)."""
    return invalid_argument(
        f"Attribute '{column.logical_name}' of entity '{table.logical_name}' "
        f"is not valid for {operation}."
    )


def out_of_range(table: Table, column: Column, value: t.Any) -> DataverseFault:
    """400 ``0x80040203``: a number or date outside the column's range (§4.6)."""
    return invalid_argument(
        f"A validation error occurred. The value {value} of '{column.logical_name}' on record "
        f"of type '{table.logical_name}' is outside the valid range."
    )


def required_cleared(table: Table, column: Column) -> DataverseFault:
    """400 ``0x80040203``: ``null`` written to a SystemRequired column (§4.6, "null")."""
    return invalid_argument(
        f"Attribute '{column.logical_name}' of entity '{table.logical_name}' cannot be NULL."
    )


def bind_target_invalid(
    entity_set: str, navigation: str, targets: t.Sequence[str]
) -> DataverseFault:
    """400 ``0x80040203``: ``@odata.bind`` to an entity set the lookup cannot point at (§4.7)."""
    return invalid_argument(
        f"The entity set '{entity_set}' is not a valid target of the navigation "
        f"property '{navigation}'. Valid targets: {', '.join(targets)}."
    )


def reference_target_invalid(entity_set: str, target: Table) -> DataverseFault:
    """400 ``0x80040203``: a ``$ref`` to a row of another table than the property's (§4.7)."""
    return invalid_argument(
        f"The entity set '{entity_set}' is not a valid target of the navigation property: "
        f"it leads to '{target.entity_set_name}'."
    )


def bulk_target_type_mismatch(type_name: str, table: Table) -> DataverseFault:
    """400 ``0x80040203``: a bulk target whose ``@odata.type`` is another table (§6.1)."""
    return invalid_argument(
        f"The type '{type_name}' of a target does not match the entity set "
        f"'{table.entity_set_name}' ('{NAMESPACE}{table.logical_name}' expected)."
    )


def bulk_update_needs_id(table: Table) -> DataverseFault:
    """400 ``0x80040203``: an UpdateMultiple target without its primary key (§6.2)."""
    return invalid_argument(
        f"Each target of UpdateMultiple needs its primary key '{table.primary_id}'; "
        "alternate keys are not supported with UpdateMultiple (§6.2)."
    )


def list_member_needs_id(table: Table) -> DataverseFault:
    """400 ``0x80040203``: an AddListMembersList member without its primary key.

    Marketing lists are described in ``docs/emulator-lists.md``; the code is InvalidArgument.
    """
    return invalid_argument(
        f"Each member of AddListMembersList needs its primary key '{table.primary_id}'."
    )


def list_is_dynamic(table: Table, list_id: object) -> DataverseFault:
    """400 ``0x80040203``: members added to or removed from a dynamic marketing list."""
    return invalid_argument(
        "Members cannot be added to or removed from a dynamic marketing list: its members "
        f"come from its query ({table.logical_name} With Id = {list_id})."
    )


def list_is_locked(table: Table, list_id: object) -> DataverseFault:
    """400 ``0x80040203``: members added to or removed from a locked marketing list."""
    return invalid_argument(
        "Members cannot be added to or removed from a locked marketing list "
        f"({table.logical_name} With Id = {list_id})."
    )


def wrong_member_type(member: Table, expected: str | None) -> DataverseFault:
    """400 ``0x80040203`` for a member whose table is not the list's ``createdfromcode``."""
    return invalid_argument(
        f"A member of type '{member.logical_name}' cannot be added to a marketing list of "
        f"'{expected or 'unknown'}' members: the member type must match the list's "
        "createdfromcode (1 account, 2 contact, 4 lead)."
    )


# ---- 0x80040217 ObjectDoesNotExist and 0x80060891: not found --------------------------------


def row_not_found(table: Table, record_id: str) -> DataverseFault:
    """404 ``0x80040217`` "<table> With Id = <guid> Does Not Exist" (§4.4, §4.9)."""
    return DataverseFault(
        Kind.NOT_FOUND,
        OBJECT_DOES_NOT_EXIST,
        f"{table.logical_name} With Id = {record_id} Does Not Exist",
    )


def rows_not_found(label: str, record_id: str) -> DataverseFault:
    """404 ``0x80040217`` "<display name> With Ids = <guid> Do Not Exist" (UpdateMultiple, §6.2)."""
    return DataverseFault(
        Kind.NOT_FOUND, OBJECT_DOES_NOT_EXIST, f"{label} With Ids = {record_id} Do Not Exist"
    )


def key_not_found(table: Table) -> DataverseFault:
    """404 ``0x80060891`` for an alternate key that resolves to no record (§4.3, §11 #4)."""
    return DataverseFault(
        Kind.NOT_FOUND,
        "0x80060891",
        f"A record with the specified key values does not exist in {table.logical_name} entity",
    )


def table_not_found(name: str, *, by_id: bool = False) -> DataverseFault:
    """404 ``0x80040217`` for an unknown ``EntityDefinitions`` key (§3.7, §11 #7)."""
    entity, metadata_id = ("", name) if by_id else (name, "00000000-0000-0000-0000-000000000000")
    return DataverseFault(
        Kind.NOT_FOUND,
        OBJECT_DOES_NOT_EXIST,
        f"Could not find an entity with name {entity} and id {metadata_id}.",
    )


def relationship_not_found(name: str) -> DataverseFault:
    """404 ``0x80040217`` for an unknown ``RelationshipDefinitions`` key (§3.5)."""
    return DataverseFault(
        Kind.NOT_FOUND,
        OBJECT_DOES_NOT_EXIST,
        f"Could not find a relationship with name or id {name}.",
    )


def attribute_not_found(name: str, table: Table) -> DataverseFault:
    """404 ``0x80040217`` for an unknown ``Attributes(...)`` key (§3.1)."""
    return DataverseFault(
        Kind.NOT_FOUND,
        OBJECT_DOES_NOT_EXIST,
        f"Could not find attribute '{name}' on entity '{table.logical_name}'.",
    )


def option_set_not_found(name: object) -> DataverseFault:
    """404 ``0x80040217`` for an unknown ``GlobalOptionSetDefinitions`` key (§3.4)."""
    return DataverseFault(
        Kind.NOT_FOUND, OBJECT_DOES_NOT_EXIST, f"Could not find optionset {name}."
    )


def metadata_key_not_found(key: object) -> DataverseFault:
    """404 ``0x80040217`` for an unknown ``Keys(...)`` item (§3.6)."""
    return DataverseFault(
        Kind.NOT_FOUND, OBJECT_DOES_NOT_EXIST, f"Could not find a metadata item with key {key}."
    )


def alternate_key_not_found(key: str, table: str) -> DataverseFault:
    """404 ``0x80040217`` for a key index job on a key the table does not have (§3.6)."""
    return DataverseFault(
        Kind.NOT_FOUND,
        OBJECT_DOES_NOT_EXIST,
        f"Could not find an alternate key named '{key}' on '{table}'.",
    )


# ---- 412: duplicates and stale versions -----------------------------------------------------


def duplicate_record() -> DataverseFault:
    """412 ``0x80040237`` "A record with matching key values already exists." (§4.4, §4.9)."""
    return DataverseFault(Kind.PRECONDITION_FAILED, DUPLICATE_RECORD, ALREADY_EXISTS)


def duplicate_association() -> DataverseFault:
    """412 ``0x80040237`` "Cannot insert duplicate key." for an existing association (§4.7)."""
    return DataverseFault(
        Kind.PRECONDITION_FAILED, DUPLICATE_RECORD, "Cannot insert duplicate key."
    )


def stale_version() -> DataverseFault:
    """412 with an empty code: ``If-Match`` names another version of the row (§4.4, §4.9)."""
    return DataverseFault(Kind.PRECONDITION_FAILED, "", STALE_VERSION)


def duplicate_key(key_name: str, columns: t.Sequence[str]) -> DataverseFault:
    """412 ``0x80060892`` DuplicateRecordEntityKey: an alternate-key value taken (§4.1, §11 #4)."""
    return DataverseFault(
        Kind.PRECONDITION_FAILED,
        "0x80060892",
        f"Entity Key {key_name} violated. A record with the same value for {', '.join(columns)} "
        "already exists. A duplicate record cannot be created. Select one or more unique values "
        "and try again.",
    )


# ---- value validation -------------------------------------------------------------------------


def choice_out_of_range(table: Table, column: Column, value: t.Any) -> DataverseFault:
    """400 ``0x8004431A``: a choice value not in the column's options (§4.9, §11 #2)."""
    accepted = ",".join(str(o.value) for o in column.options)
    return DataverseFault(
        Kind.BAD_REQUEST,
        "0x8004431A",
        f"A validation error occurred. The value {value} of '{column.logical_name}' on "
        f"record of type '{table.logical_name}' is outside the valid range. "
        f"Accepted Values: {accepted}",
    )


def text_too_long(table: Table, column: Column, limit: int) -> DataverseFault:
    """400 ``0x80044331``: text longer than the column's ``MaxLength`` (§4.9)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        "0x80044331",
        f"A validation error occurred.  The length of the '{column.logical_name}' "
        f"attribute of the '{table.logical_name}' entity exceeded the maximum allowed "
        f"length of '{limit}'.",
    )


def invalid_status(table: Table, status: t.Any, state: t.Any, record_id: str) -> DataverseFault:
    """400 ``0x80048408``: a statuscode that does not belong to the row's statecode (§4.10)."""
    option = next((o for o in table.columns["statecode"].options if o.value == state), None)
    name = (option.invariant_name or option.label) if option is not None else state
    return DataverseFault(
        Kind.BAD_REQUEST,
        "0x80048408",
        f"{status} is not a valid status code for state code {table.schema_name}State.{name} "
        f"on {table.logical_name} with Id {record_id}.",
    )


# ---- other failures ---------------------------------------------------------------------------


def privilege_denied(
    user: str, privilege_count: int, privilege: str, privilege_id: str, scope: str
) -> DataverseFault:
    """403 ``0x80040220`` PrivilegeDenied, naming the missing privilege (§1.5, §4.9)."""
    return DataverseFault(
        Kind.FORBIDDEN,
        PRIVILEGE_DENIED,
        f"Principal user (Id={user}, type=8, roleCount=1, privilegeCount={privilege_count}, "
        f"accessMode=4), is missing {privilege} privilege (Id={privilege_id})"
        f"{scope}. context.Caller={user}",
    )


def unexpected_error() -> DataverseFault:
    """400 ``0x80040216`` "An unexpected error occurred." (§4.9; UpsertMultiple pitfall, §6.3)."""
    return DataverseFault(Kind.BAD_REQUEST, "0x80040216", "An unexpected error occurred.")


def bulk_not_supported(message: str, table: Table) -> DataverseFault:
    """400 ``0x80040800`` SdkEntityDoesNotSupportMessage: a bulk message the table lacks (§6.5)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        "0x80040800",
        f"The '{message}' method does not support entities of type '{table.logical_name}'. "
        "MessageProcessorCache returned MessageProcessor.Empty. ",
    )


def delete_multiple_not_implemented() -> DataverseFault:
    """400 ``0x80040800``: DeleteMultiple on a standard (not elastic) table (§6.4)."""
    return DataverseFault(
        Kind.BAD_REQUEST, "0x80040800", "DeleteMultiple has not yet been implemented."
    )


def unexpected_server_error() -> DataverseFault:
    """500 ``0x80040216`` "An unexpected error occurred." (a bug in the emulator, §4.9)."""
    return DataverseFault(Kind.SERVER_ERROR, "0x80040216", "An unexpected error occurred.")


def body_too_large(limit: int) -> DataverseFault:
    """413 with an empty code: a request body over the size limit (§7.5)."""
    return DataverseFault(
        Kind.TOO_LARGE, "", f"The request body exceeds the maximum size of {limit} bytes."
    )


# ---- requests the wire cannot parse (§2.6) ------------------------------------------------------


def unsupported_version(version: str) -> DataverseFault:
    """400 ``0x80060888`` for an API version segment other than ``v<major>.<minor>`` (§2.1)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        RESOURCE_NOT_FOUND,
        f"Requested API Version '{version}' was not understood. Please provide in the format "
        "/api/data/v<Major>.<Minor>/ (example: /api/data/v7.2/)",
    )


def unparsable_request(detail: str) -> DataverseFault:
    """400 ``0x80060888``: a query option, ``$filter`` or part URL the wire refuses (§2.6)."""
    return DataverseFault(Kind.BAD_REQUEST, RESOURCE_NOT_FOUND, detail)


def malformed_batch(detail: str) -> DataverseFault:
    """400 ``0x80048d19`` for a ``$batch`` body or ``Content-Type`` that cannot be parsed (§5.4)."""
    return DataverseFault(Kind.BAD_REQUEST, PAYLOAD_ERROR, detail)


def foreign_batch_url(url: str) -> DataverseFault:
    """400 ``0x80060888``: a ``$batch`` part addressed to another service (§2.6)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        RESOURCE_NOT_FOUND,
        f"The URL '{url}' of a batch operation is not in this service.",
    )


def batch_too_large(total: int, maximum: int) -> DataverseFault:
    """400 ``0x8004800c``: a ``$batch`` of more than 1,000 requests (§5.1, §7.5)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        "0x8004800c",
        f"The batch contains {total} requests; the maximum is {maximum}.",
    )
