"""The HTTP API (Starlette) and its Python clients."""
