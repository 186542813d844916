"""An object class as an older deploy had it: one migration. Loaded only by e2e worker processes."""

from solo import DurableObject, rpc


class Versioned(DurableObject):
    migrations = ["CREATE TABLE notes (text TEXT NOT NULL)"]

    @rpc
    def code(self) -> str:
        return "v1"
