"""solo's object model: what a user writes, and the machinery that runs it.

At the top of this package is the model a user programs against: `DurableObject`
and `@rpc` (definition.py), `self.sql`, `self.storage`, `self.shared`, alarms
and schedules, calls to other objects, and the errors they raise. Users import
it from `solo` itself. The machinery is grouped by concern:

  runtime/       one object on one worker: its instance and its activation
  state/         durable state in the shared database: WAL shipping, restore, schema
  coordination/  Redis: mailboxes, leases, key names, Lua scripts, the alarm time index

Nothing here imports Starlette or Dramatiq.
"""
