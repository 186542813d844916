from solo import DurableObject, rpc


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
        self.sql.execute("UPDATE counter SET value = value + ?", (by,))
        return self.sql.execute("SELECT value FROM counter").fetchone()[0]

    @rpc
    def get(self) -> int:
        return self.sql.execute("SELECT value FROM counter").fetchone()["value"]
