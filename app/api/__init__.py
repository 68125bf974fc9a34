"""The JSON API under /api/v1: bearer tokens, then the areas' endpoints; errors are JSON."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
