"""The portal's routers, one per kind of route (FastAPI's "bigger applications" layout)."""
