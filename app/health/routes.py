from flask import jsonify

from app.health import bp
from app.health.service import check_dependencies


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    checks = check_dependencies()
    failed = sorted(name for name, state in checks.items() if state != "ok")
    if failed:
        return jsonify(status="unavailable", checks=checks, failed=failed), 503
    return jsonify(status="ok", checks=checks)
