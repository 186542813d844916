"""Objects' durable state in the shared database.

Owns the shared database's schema and migrations, the object catalog (epochs,
activations), the log of WAL frames and snapshots (the StateStore), shipping each
commit to it, rebuilding a local file from it, checking imported files, and the
shared index of every object's alarms.
"""
