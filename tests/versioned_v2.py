"""The same class after a deploy that added a migration. Loaded only by e2e worker processes."""

from solo import DurableObject, rpc


class Versioned(DurableObject):
    migrations = [
        "CREATE TABLE notes (text TEXT NOT NULL)",
        "ALTER TABLE notes ADD COLUMN author TEXT",
    ]

    @rpc
    def code(self) -> str:
        return "v2"
