"""A bare Starlette endpoint with solo's route shape and uvicorn settings: the HTTP floor.

    .venv/bin/python -m uvicorn bench.bare_app:app --port P --log-level warning --no-access-log

POST /v1/objects/{class_name}/{name}/{method} reads the body and answers a
small JSON document, with no Redis, no worker and no database behind it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def call(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"result": 1, "call_id": "0" * 32})


app = Starlette(routes=[Route("/v1/objects/{class_name}/{name}/{method}", call, methods=["POST"])])
