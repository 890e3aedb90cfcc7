"""Request bodies held to a size while they arrive: an ASGI middleware that answers 413 as
soon as the declared length or the bytes received so far pass the limit, before anything is
spooled."""

from __future__ import annotations

import contextlib

from fastapi.responses import JSONResponse


class LimitBody:
    """ASGI middleware: a request body over `limit` bytes is refused with 413 as soon as its
    declared length or the bytes received so far say so, before it is spooled anywhere."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, send)
        received, refused = 0, False

        async def counted():
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit and not refused:
                refused = True  # answer now; whatever the app says after is dropped
                await self._refuse(scope, send)
                raise _TooLarge
            return message

        async def unless_refused(message) -> None:
            if not refused:
                await send(message)

        with contextlib.suppress(_TooLarge):  # the 413 has been sent
            await self.app(scope, counted, unless_refused)

    async def _refuse(self, scope, send) -> None:
        mb = self.limit / 2**20
        response = JSONResponse(
            {"error": f"the upload is larger than the {mb:.2f} MB request limit"}, 413
        )
        await response(scope, None, send)


class _TooLarge(Exception):
    pass
