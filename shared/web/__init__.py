"""ASGI pieces shared by the gateway and admin apps (error handlers, request ids)."""
