"""Stand-ins for the loader's tests: metadata served like EntityDefinitions (§3.8)."""

from __future__ import annotations

import re
import types
import typing as t

from target_dynamics.errors import WebApiError


def attr(name: str, type_name: str, **more: t.Any) -> dict[str, t.Any]:
    """An attribute: common properties, and under ``derived`` what its cast (§3.4) returns."""
    common = {
        "LogicalName": name,
        "AttributeType": type_name.removesuffix("Type"),
        "AttributeTypeName": {"Value": type_name},
        "RequiredLevel": {"Value": more.pop("required", "None")},
        "IsValidForCreate": more.pop("create", True),
        "IsValidForUpdate": more.pop("update", True),
        "AttributeOf": more.pop("of", None),
        "IsPrimaryId": more.pop("primary", False),
    }
    return {**common, "derived": more}


def _option(value: int, label: str) -> dict[str, t.Any]:
    return {
        "Value": value,
        "Label": {"UserLocalizedLabel": {"Label": label}, "LocalizedLabels": []},
    }


def options(**labels: int) -> dict[str, t.Any]:
    """An ``OptionSet`` with ``label=value`` pairs (underscores read as spaces)."""
    return {"OptionSet": {"Options": [_option(v, k.replace("_", " ")) for k, v in labels.items()]}}


CONTACT = {
    "LogicalName": "contact",
    "EntitySetName": "contacts",
    "PrimaryIdAttribute": "contactid",
    "PrimaryNameAttribute": "fullname",
    "Attributes": [
        attr(
            "contactid",
            "UniqueidentifierType",
            primary=True,
            update=False,
            required="SystemRequired",
        ),
        attr("firstname", "StringType", MaxLength=50),
        attr("lastname", "StringType", MaxLength=50),
        attr("fullname", "StringType", MaxLength=160, create=False, update=False),
        attr("emailaddress1", "StringType", MaxLength=100),
        attr("description", "MemoType", MaxLength=2000),
        attr(
            "birthdate", "DateTimeType", Format="DateOnly", DateTimeBehavior={"Value": "DateOnly"}
        ),
        attr(
            "lastonholdtime",
            "DateTimeType",
            Format="DateAndTime",
            DateTimeBehavior={"Value": "UserLocal"},
        ),
        attr("annualincome", "MoneyType", Precision=2, MinValue=0, MaxValue=100000000000000),
        attr("annualincome_base", "MoneyType", of="annualincome", create=False, update=False),
        attr("numberofchildren", "IntegerType", MinValue=0, MaxValue=1000000000),
        attr("address1_latitude", "DoubleType", Precision=5, MinValue=-90, MaxValue=90),
        attr(
            "creditonhold",
            "BooleanType",
            OptionSet={"TrueOption": _option(1, "Yes"), "FalseOption": _option(0, "No")},
        ),
        attr("gendercode", "PicklistType", **options(Male=1, Female=2)),
        attr("statecode", "StateType", **options(Active=0, Inactive=1)),
        attr("hobbies", "MultiSelectPicklistType", **options(Swimming=1, Camping=9, Board_games=3)),
        attr("parentcustomerid", "CustomerType", Targets=["account", "contact"]),
        attr(
            "parentcustomeridname", "StringType", of="parentcustomerid", create=False, update=False
        ),
        attr("ownerid", "OwnerType", Targets=["systemuser", "team"], required="SystemRequired"),
        attr("externalref", "UniqueidentifierType"),
        attr("employeeid", "StringType", MaxLength=100),
        attr("entityimage", "ImageType", create=True),
    ],
    "Keys": [
        {
            "SchemaName": "contact_email_name",
            "KeyAttributes": ["emailaddress1", "lastname"],
            "EntityKeyIndexStatus": "Active",
        },
        {
            "SchemaName": "contact_employee",
            "KeyAttributes": ["employeeid"],
            "EntityKeyIndexStatus": "Pending",
        },
    ],
    "ManyToOneRelationships": [
        {
            "ReferencedEntity": "account",
            "ReferencingAttribute": "parentcustomerid",
            "ReferencingEntityNavigationPropertyName": "parentcustomerid_account",
        },
        {
            "ReferencedEntity": "contact",
            "ReferencingAttribute": "parentcustomerid",
            "ReferencingEntityNavigationPropertyName": "parentcustomerid_contact",
        },
        {
            "ReferencedEntity": "owner",
            "ReferencingAttribute": "ownerid",
            "ReferencingEntityNavigationPropertyName": "ownerid",
        },
    ],
}
ACCOUNT = {
    "LogicalName": "account",
    "EntitySetName": "accounts",
    "PrimaryIdAttribute": "accountid",
    "PrimaryNameAttribute": "name",
    "Attributes": [
        attr("accountid", "UniqueidentifierType", primary=True, update=False),
        attr("name", "StringType", MaxLength=160),
        attr("accountnumber", "StringType", MaxLength=20),
    ],
    "Keys": [{"SchemaName": "account_number", "KeyAttributes": ["accountnumber"]}],
    "ManyToOneRelationships": [],
}
SYSTEMUSER = {
    "LogicalName": "systemuser",
    "EntitySetName": "systemusers",
    "PrimaryIdAttribute": "systemuserid",
    "Attributes": [attr("systemuserid", "UniqueidentifierType", primary=True)],
    "Keys": [],
    "ManyToOneRelationships": [],
}
TABLES = (CONTACT, ACCOUNT, SYSTEMUSER)


class FakeClient:
    """Answers the metadata GETs of :mod:`target_dynamics.metadata`; records every path."""

    def __init__(self, tables: t.Sequence[dict] = TABLES, *, bulk: bool = True) -> None:
        self.tables = {d["LogicalName"]: d for d in tables}
        self.bulk = bulk
        self.paths: list[str] = []
        self.stats = types.SimpleNamespace(requests=0, retries=2, throttled_seconds=1.5)

    def get_json(self, path: str) -> dict:
        self.paths.append(path)
        if path.startswith("EntityDefinitions?"):
            return {
                "value": [
                    {"LogicalName": n, "EntitySetName": d.get("EntitySetName")}
                    for n, d in self.tables.items()
                ]
            }
        if path.startswith("sdkmessagefilters"):
            names = ["CreateMultiple", "UpdateMultiple"] if self.bulk else []
            return {"value": [{"sdkmessageid": {"name": n}} for n in names]}
        match = re.match(
            r"EntityDefinitions\(LogicalName='(\w+)'\)(/Attributes/Microsoft\.Dynamics\.CRM\.(\w+))?",
            path,
        )
        assert match, path
        table = self.tables.get(match.group(1))
        if table is None:
            raise WebApiError(
                404, "0x80040217", f"Could not find an entity with name {match.group(1)}"
            )
        if match.group(3):
            cast = match.group(3).removesuffix("AttributeMetadata")
            wanted = {"Lookup": {"LookupType", "CustomerType", "OwnerType"}}.get(
                cast, {f"{cast}Type"}
            )
            return {
                "value": [
                    {"LogicalName": a["LogicalName"], **a["derived"]}
                    for a in table["Attributes"]
                    if a["AttributeTypeName"]["Value"] in wanted
                ]
            }
        return {
            **table,
            "Attributes": [
                {k: v for k, v in a.items() if k != "derived"} for a in table["Attributes"]
            ],
        }
