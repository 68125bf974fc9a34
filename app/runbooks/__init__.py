"""Platform runbooks: the catalog, operation runs, preflight → confirm → start, and execution."""
