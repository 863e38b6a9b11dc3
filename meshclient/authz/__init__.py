"""Server-side authorization (identities, policies, decisions): lands with the ASGI and gRPC middleware."""
