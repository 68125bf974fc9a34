"""The append-only audit trail: recording, the hash chain, the audit views and CSV export."""

from flask import Blueprint

bp = Blueprint("audit", __name__)
