"""Support for testing solo and applications built on it."""
