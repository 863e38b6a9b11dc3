"""Server-side authorization: identities, policies and decisions (with the middleware)."""
