"""The `solo` command."""
