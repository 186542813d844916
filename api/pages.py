"""Static pages of the served applications: ``pages/*.html`` next to a module of SOLO_OBJECTS.

``GET /pages/{page}`` answers the first such file (``solo.examples`` ships ``chat.html``, the
Conversation example's chat page). Pages are open: they hold no data, and the scripts in them
reach objects through the API with a key of their own (the WebSocket's ``token`` parameter).
A page's name is checked before it becomes a path: a short lower-case name ending in ``.html``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse

PAGES_DIR = "pages"
_PAGE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\.html")


def page_dirs(object_modules: Iterable[str]) -> list[Path]:
    """The `pages/` directories next to the given modules, in order."""
    found: list[Path] = []
    for module in object_modules:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        candidate = Path(spec.origin).resolve().parent / PAGES_DIR
        if candidate.is_dir() and candidate not in found:
            found.append(candidate)
    return found


class Pages:
    def __init__(self, object_modules: Iterable[str]) -> None:
        self.dirs = page_dirs(object_modules)

    async def get(self, request: Request) -> FileResponse:
        name = request.path_params["page"]
        if _PAGE.fullmatch(name):
            for folder in self.dirs:
                if (folder / name).is_file():
                    return FileResponse(folder / name, media_type="text/html; charset=utf-8")
        raise HTTPException(404)
