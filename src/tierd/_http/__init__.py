"""The HTTP API and web dashboard of a runtime (``runtime.http``, DESIGN §15).

Imported only by a runtime whose config sets ``runtime.http``, so that one
without it loads no web stack. `HttpServer` is the whole of what the runtime
sees: ``bind`` (in `Runtime.start`, so an address in use fails the start),
``start`` and ``close``.

=================  ==================================================================
module             what it holds
=================  ==================================================================
``_server``        `HttpServer`: the socket and uvicorn in a thread of its own
``_app``           the FastAPI routes over `Runtime` (``Served``), and the page routes
``_dashboard``     the server-rendered pages and fragments (``templates/``, ``static/``)
``_live``          `LiveEvents`: the sink on `Runtime.events` and a bounded queue per viewer
``_access``        `Tokens`: bearer tokens and their roles, compared in constant time
``_errors``        the one mapping from an error to a status and ``{"error": ...}``
=================  ==================================================================
"""

from ._server import HttpServer

__all__ = ["HttpServer"]
