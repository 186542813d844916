from solo import DurableObject, UserError, rpc


class Counter(DurableObject):
    """A counter; the quick-start example."""

    migrations = [
        "CREATE TABLE counter (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)",
        "INSERT INTO counter VALUES (0, 0)",
    ]

    def on_start(self) -> None:
        self.hits = 0  # in-memory: kept while the object is active

    @rpc
    def increment(self, by: int = 1) -> int:
        self.hits += 1
        value = self.get() + by
        if not -(2**63) <= value < 2**63:  # SQLite's integers are 64-bit; past them it would store a float
            raise UserError("the counter would leave the 64-bit range", status=422, code="out_of_range")
        self.sql.execute("UPDATE counter SET value = ?", (value,))
        return value

    @rpc
    def get(self) -> int:
        return self.sql.execute("SELECT value FROM counter").fetchone()["value"]
