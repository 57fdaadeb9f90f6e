"""Cost model: how long the emulated server works on each request.

Server time = a per-request base + a per-operation time that depends on the kind of request
(single write, ``$batch`` operation, bulk record). The emulator really waits that long (without
blocking its event loop) and the user's execution-time budget (reference §7.1) is charged with
it, so the throughput ceilings of §9.3 emerge instead of being hard-coded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CostModel:
    """Seconds of server time per request and per operation (before ``--time-scale``).

    Attributes:
        request_base: Every request. §9.1 (SLG): CreateMultiple with 50 rows ran at 7,870/min
            (381 ms per request) and with 1,000 rows at 9,100/min (6.59 s per request), which
            leaves ≈ 55 ms fixed per request including client and network time; the server's
            share of that is not published, we take 15 ms.
        single_write: A single POST / PATCH / DELETE on a record, on top of the base. §9.3:
            "creates cost ≈ 40-60 ms"; 15 + 35 = 50 ms, the middle of that range.
        batch_operation: Each operation inside ``$batch``. §9.3: "t ≈ 40 ms from the samples to
            ≈ 64 ms from Carrington"; we take the samples' 40 ms (Carrington's includes latency).
        bulk_create_record: Each record of CreateMultiple, and each member of
            AddListMembersList (one ``listmember`` row created per member). §9.3: "t ≤ ≈ 10 ms
            create".
        bulk_update_record: Each record of UpdateMultiple / UpsertMultiple / DeleteMultiple.
            §9.3: "≈ 30 ms update per the samples".
    """

    request_base: float = 0.015
    single_write: float = 0.035
    batch_operation: float = 0.040
    bulk_create_record: float = 0.010
    bulk_update_record: float = 0.030

    def server_time(self, kind: str, count: int, path: str) -> float:
        """Return the nominal server seconds for one request.

        Args:
            kind: The operation kind wire reported (``read``, ``metadata``, ``single``,
                ``batch``, ``bulk``, ``other``).
            count: Operations in the request (records of a bulk request, parts of a batch).
            path: Request path; tells the creating bulk messages (CreateMultiple,
                AddListMembersList) from the others.

        Returns:
            Seconds; reads, metadata and other requests cost only the base.
        """
        if kind == "single":
            return self.request_base + self.single_write
        if kind == "batch":
            return self.request_base + self.batch_operation * count
        if kind == "bulk":
            per_record = (
                self.bulk_create_record
                if "CreateMultiple" in path or "AddListMembersList" in path
                else self.bulk_update_record
            )
            return self.request_base + per_record * count
        return self.request_base
