"""Change requests: the minimal record incidents link to (approval with segregation of duties)."""

from flask import Blueprint

bp = Blueprint("changes", __name__)
