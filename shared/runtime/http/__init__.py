"""The HTTP edge: the app factory and runtime, the guard (token, size, errors), auth, request pieces, OpenAPI."""
