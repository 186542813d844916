"""Running one object on one worker.

instance.py holds a hydrated object (its SQLite file and the user's instance) and
runs batches of calls; activation.py owns the whole sequence of an activation:
claim, hydrate, run, ship, send, announce, complete, evict.
"""
