"""The emulator's state: tables, metadata, records, alternate keys, users and budgets.

Nothing here sees a header or a status code: operations raise domain errors that ``wire``
renders as Dataverse error bodies.
"""
