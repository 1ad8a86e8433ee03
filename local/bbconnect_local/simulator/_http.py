"""The simulator's one extension of the two-way TLS server: closing a connection without an answer.

`MutualTlsServer` (in `bbconnect_local.mtls_server`, shared with other tools and not the simulator's
to change) always answers. For the `drop_ack` fault the simulator returns `DROP`; the request handler
class of *its own* server instance is swapped for a subclass that, on `DROP`, writes nothing and lets
the server close the socket. This leans on two private names of that module (`_server`,
`_RequestHandler._send`); `enable_drop()` checks them and reports whether dropping is available, so
a change there degrades `drop_ack` (to a held answer) instead of breaking the simulator.
"""
from __future__ import annotations

from bbconnect_local.mtls_server import HttpResponse, MutualTlsServer


class _Drop(HttpResponse):
    """Not an answer: close the connection without writing anything."""


DROP = _Drop(599, {}, b"")


def enable_drop(server: MutualTlsServer) -> bool:
    inner = getattr(server, "_server", None)
    handler_class = getattr(inner, "RequestHandlerClass", None)
    if inner is None or handler_class is None or not callable(getattr(handler_class, "_send", None)):
        return False
    if getattr(handler_class, "_bbsim_drops", False):
        return True

    def _send(self, response: HttpResponse) -> None:  # type: ignore[no-untyped-def]
        if response is DROP:
            self.close_connection = True
            return
        handler_class._send(self, response)

    inner.RequestHandlerClass = type(
        f"Dropping{handler_class.__name__}", (handler_class,), {"_send": _send, "_bbsim_drops": True}
    )
    return True
