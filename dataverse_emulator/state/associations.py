"""Many-to-many associations: Associate, Disassociate and the related rows of each side.

Every many-to-many relationship of the catalog whose two tables the catalog holds is navigable
from each side through its ``Entity1NavigationPropertyName`` / ``Entity2NavigationPropertyName``
(`Associate and disassociate table rows using the Web API
<https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api>`_).
List memberships (intersect ``listmember``) are :mod:`~dataverse_emulator.state.lists` rows;
other pairs are kept by the record store under their intersect entity's name.

Associate needs Append on the addressed table and AppendTo on the related one (as a lookup
bind, §1.7); associating a pair twice answers 412 ``0x80040237`` "Cannot insert duplicate
key." (DuplicateRecord in the `Web service error codes
<https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes>`_;
the status of that answer is not documented, the emulator uses the one §4.9 gives the code).
Disassociating a pair that is not associated changes nothing and succeeds (not documented).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from dataverse_emulator.state import lists
from dataverse_emulator.state.error_catalogue import duplicate_association
from dataverse_emulator.state.privileges import require

if t.TYPE_CHECKING:
    from dataverse_emulator.state.catalog import Catalog, ManyToMany, Table
    from dataverse_emulator.state.privileges import Caller
    from dataverse_emulator.state.store import RecordStore


@dataclass(frozen=True, slots=True)
class Navigation:
    """A collection-valued navigation property backed by a many-to-many relationship.

    Attributes:
        relationship: The relationship.
        source: Logical name of the table the property is on.
        target: Logical name of the table it leads to.
    """

    relationship: ManyToMany
    source: str
    target: str

    @property
    def source_is_entity1(self) -> bool:
        """Whether the property's table is the relationship's Entity1."""
        return self.relationship.entity1 == self.source


def navigations(catalog: Catalog, table: Table) -> dict[str, Navigation]:
    """Many-to-many navigation properties of ``table`` whose related table the catalog holds."""
    found: dict[str, Navigation] = {}
    for m2m in table.many_to_many:
        if not (catalog.has_table(m2m.entity1) and catalog.has_table(m2m.entity2)):
            continue
        if m2m.entity1 == table.logical_name and m2m.entity1_navigation:
            found.setdefault(m2m.entity1_navigation, Navigation(m2m, m2m.entity1, m2m.entity2))
        if m2m.entity2 == table.logical_name and m2m.entity2_navigation:
            found.setdefault(m2m.entity2_navigation, Navigation(m2m, m2m.entity2, m2m.entity1))
    return found


def associate(
    store: RecordStore, nav: Navigation, source_id: str, target_id: str, caller: Caller | None
) -> None:
    """Associate a ``nav.source`` row with a ``nav.target`` row.

    Raises:
        DataverseFault: 404 a missing row; 403 a missing privilege; 412 ``0x80040237`` an
            existing pair; list memberships fail as :func:`lists.add_member` does.
    """
    if lists.is_list_relationship(nav.relationship):
        list_id, member = _list_and_member(nav, source_id, target_id)
        lists.add_member(store, list_id, member[0], member[1], caller)
        return
    source, target = _ids(store, nav, source_id, target_id)
    require(caller, store.catalog.table(nav.source), "append")
    require(caller, store.catalog.table(nav.target), "appendto")
    pair, row = _pair(nav, source, target)
    if not store.link(nav.relationship.intersect_entity, pair, row):
        raise duplicate_association()


def disassociate(
    store: RecordStore, nav: Navigation, source_id: str, target_id: str, caller: Caller | None
) -> None:
    """Remove the association of two rows; a pair that is not associated is a no-op.

    Raises:
        DataverseFault: 404 a missing row; 403 a missing privilege; list memberships fail as
            :func:`lists.remove_member` does.
    """
    if lists.is_list_relationship(nav.relationship):
        list_id, member = _list_and_member(nav, source_id, target_id)
        store.retrieve(member[0], member[1])
        lists.remove_member(store, list_id, member[1], caller)
        return
    source, target = _ids(store, nav, source_id, target_id)
    require(caller, store.catalog.table(nav.source), "append")
    require(caller, store.catalog.table(nav.target), "appendto")
    pair, _ = _pair(nav, source, target)
    store.unlink(nav.relationship.intersect_entity, pair)


def related_ids(store: RecordStore, nav: Navigation, source_id: str) -> list[str]:
    """Ids of the ``nav.target`` rows associated with one ``nav.source`` row."""
    if lists.is_list_relationship(nav.relationship):
        if nav.source == lists.LIST:
            return lists.member_ids(store, source_id, nav.target)
        return lists.lists_of(store, source_id)
    mine = 0 if nav.source_is_entity1 else 1
    pairs = store.links(nav.relationship.intersect_entity)
    return [pair[1 - mine] for pair in pairs if pair[mine] == source_id]


def _list_and_member(
    nav: Navigation, source_id: str, target_id: str
) -> tuple[str, tuple[str, str]]:
    if nav.source == lists.LIST:
        return source_id, (nav.target, target_id)
    return target_id, (nav.source, source_id)


def _ids(store: RecordStore, nav: Navigation, source_id: str, target_id: str) -> tuple[str, str]:
    """The stored ids of both rows (404 when either is missing)."""
    catalog = store.catalog
    source = store.retrieve(nav.source, source_id)[catalog.table(nav.source).primary_id]
    target = store.retrieve(nav.target, target_id)[catalog.table(nav.target).primary_id]
    return source, target


def _pair(nav: Navigation, source: str, target: str) -> tuple[tuple[str, str], dict[str, str]]:
    """The stored pair (Entity1 id, Entity2 id) and its intersect row."""
    first, second = (source, target) if nav.source_is_entity1 else (target, source)
    m2m = nav.relationship
    row = {m2m.entity1_intersect_attribute: first, m2m.entity2_intersect_attribute: second}
    return (first, second), row
