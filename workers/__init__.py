"""Worker processes: Dramatiq broker and actors, the object host."""
