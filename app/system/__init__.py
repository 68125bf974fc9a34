"""The /system console of platform operators: sign-in, break-glass, platform audit, runbooks."""

from flask import Blueprint

bp = Blueprint("system", __name__, url_prefix="/system")

from app.system import deliveries, procedures, runbooks  # noqa: E402,F401  (their routes on this blueprint)
