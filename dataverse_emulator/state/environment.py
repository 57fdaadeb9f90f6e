"""One emulated Dataverse environment: metadata catalog, record store, organization and users."""

from __future__ import annotations

import typing as t

from dataverse_emulator.state import collation, lists
from dataverse_emulator.state.custom_tables import load_catalog
from dataverse_emulator.state.errors import DataverseFault
from dataverse_emulator.state.key_jobs import DEFAULT_DELAY, KeyIndexJobs
from dataverse_emulator.state.privileges import Caller
from dataverse_emulator.state.store import RecordStore

if t.TYPE_CHECKING:
    from pathlib import Path

    from dataverse_emulator.state.catalog import Catalog


class AppUser(t.Protocol):
    """An application user as the platform defines it (client credentials -> systemuser)."""

    @property
    def client_id(self) -> str:
        """The app registration's client id."""
        ...

    @property
    def systemuser_id(self) -> str:
        """The systemuser record the application user maps to."""
        ...

    @property
    def business_unit_id(self) -> str:
        """The business unit of that systemuser."""
        ...


class Environment:
    """The aggregate the server holds.

    Attributes:
        catalog: Tables, columns, keys and relationships.
        store: Records.
        organization_id: ``OrganizationId`` of WhoAmI (§2.4).
        business_unit_id: The root business unit.
        currency_id: The base ``transactioncurrency`` (USD) that Money columns default to.
        users: Application users; the first one writes when a request names no caller.
        key_jobs: The system jobs building alternate-key indexes (§3.6).
        language_code: The base language (LCID, ``organization.languagecode``); it fixes the
            collation (§3.10, :mod:`~dataverse_emulator.state.collation`).
    """

    def __init__(
        self,
        catalog: Catalog,
        store: RecordStore,
        users: t.Iterable[AppUser],
        key_index_delay: float = DEFAULT_DELAY,
        language_code: int = 1033,
    ) -> None:
        collation.suffix(language_code)  # a documented base language, or ValueError
        self.language_code = language_code
        self.catalog = catalog
        self.store = store
        self.key_jobs = KeyIndexJobs(store, key_index_delay)
        store.on_delete.append(lambda table, record_id: lists.forget(store, table, record_id))
        self.users = list(users)
        self.organization_id = ""
        self.business_unit_id = ""
        self.currency_id = ""
        self._seed_rows()

    @classmethod
    def create(
        cls,
        entities_file: Path | None = None,
        seed: int = 0,
        users: t.Iterable[AppUser] | None = None,
        key_index_delay: float = DEFAULT_DELAY,
        language_code: int = 1033,
    ) -> Environment:
        """Build an environment from the packaged tables (plus ``entities_file``).

        Args:
            entities_file: Extra tables, columns and keys (see ``load_catalog``).
            seed: Seed of the GUID generator: the same seed gives the same ids.
            users: Application users (their systemuser rows are created).
            key_index_delay: Seconds a key index job takes (already scaled).
            language_code: The base language (LCID), which fixes the collation.

        Raises:
            ValueError: for a language that is no Dataverse base language.
        """
        catalog = load_catalog(entities_file)
        store = RecordStore(catalog, seed=seed)
        return cls(catalog, store, users or [], key_index_delay, language_code)

    def caller(self, user: AppUser | None = None) -> Caller | None:
        """Return the writing identity for ``user`` (or the default user)."""
        chosen = user or (self.users[0] if self.users else None)
        if chosen is None:
            return None
        return Caller(
            chosen.systemuser_id,
            chosen.business_unit_id or self.business_unit_id,
            getattr(chosen, "role", None),  # a security role, where the platform gives one
        )

    def reset(self) -> None:
        """Drop every record and rule; the organization, users and ids start over.

        Metadata is not reset: keys created at run time and their index jobs stay.
        """
        self.store.reset()
        self._seed_rows()

    def snapshot(self) -> dict[str, list[dict[str, t.Any]]]:
        """Return every stored row by table logical name (JSON-able)."""
        return self.store.snapshot()

    def _seed_rows(self) -> None:
        store = self.store
        self.organization_id = store.new_id()
        self.business_unit_id = store.new_id()
        self.currency_id = store.new_id()
        store.default_currency = self.currency_id
        store.default_caller = self.caller()
        if self.catalog.has_table("transactioncurrency"):
            store.insert_system_row(
                "transactioncurrency",
                {
                    "transactioncurrencyid": self.currency_id,
                    "currencyname": "US Dollar",
                    "isocurrencycode": "USD",
                    "currencysymbol": "$",
                    "currencyprecision": 2,
                    "exchangerate": 1.0,
                    "statecode": 0,
                    "statuscode": 1,
                },
            )
        if self.catalog.has_table("organization"):
            store.insert_system_row(
                "organization",
                {
                    "organizationid": self.organization_id,
                    "name": "emulator",
                    "languagecode": self.language_code,
                    "basecurrencyid": self.currency_id,
                    "basecurrencyid@lookuplogicalname": "transactioncurrency",
                },
            )
        if self.catalog.has_table("businessunit"):
            store.insert_system_row(
                "businessunit",
                {
                    "businessunitid": self.business_unit_id,
                    "name": "emulator",
                    "organizationid": self.organization_id,
                },
            )
        self._seed_users(self.users)

    def _seed_users(self, users: t.Iterable[AppUser]) -> None:
        if not self.catalog.has_table("systemuser"):
            return
        for user in users:
            unit = user.business_unit_id or self.business_unit_id
            if self.catalog.has_table("businessunit") and not self._has_unit(unit):
                self.store.insert_system_row(
                    "businessunit",
                    {
                        "businessunitid": unit,
                        "name": "emulator",
                        "organizationid": self.organization_id,
                    },
                )
            self.store.insert_system_row(
                "systemuser",
                {
                    "systemuserid": user.systemuser_id,
                    "applicationid": user.client_id,
                    "fullname": getattr(user, "name", None) or f"# {user.client_id}",
                    "businessunitid": unit,
                    "businessunitid@lookuplogicalname": "businessunit",
                    "isdisabled": False,
                },
            )

    def _has_unit(self, unit: str) -> bool:
        try:
            self.store.retrieve("businessunit", unit)
        except DataverseFault:
            return False
        return True
