"""The web console: a small browser application served by ``automill serve`` at ``/ui/``.

It is a client of the public REST API (``/v1``): the server only hands out the page shell, the
static scripts and the sign-in session (``pages``); every dataset, model and operation the console
shows or changes goes through the same API calls the official client makes.
"""

from automill.console.pages import console_routes

__all__ = ["console_routes"]
