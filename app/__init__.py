"""Opsdesk: the application factory."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Config, ConfigError


def create_app(config: Config | None = None) -> Flask:
    """Build the application: configuration, extensions, blueprints, error handlers."""
    config = config or Config()
    if config.EMBEDDED:
        from app.embedded import start_embedded

        services = start_embedded(config.INSTANCE_DIR)
        config.SQLALCHEMY_DATABASE_URI, config.REDIS_URL = services.database_url, services.redis_url

    app = Flask(__name__, instance_path=str(config.INSTANCE_DIR))
    app.config.from_object(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    proxies = app.config.get("PROXY_HOPS", 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)

    from app import models  # noqa: F401  (every model registered before mappers configure)
    from app.auth.guards import init_login
    from app.error_pages import init_error_handlers
    from app.extensions import csrf, db, htmx, init_redis, migrate
    from app.metrics import init_metrics
    from app.security import init_security_headers
    from app.templating import init_templating
    from app.tenancy import install_scoping
    from app.transactions import install as install_after_commit

    db.init_app(app)
    migrate.init_app(app, db, directory=str(config.ROOT_DIR / "migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    init_redis(app)
    init_login(app)
    init_metrics(app)
    init_security_headers(app)
    init_templating(app)
    init_error_handlers(app)
    with app.app_context():
        session_class = type(db.session())
        install_scoping(session_class)
        install_after_commit(session_class)

    from app.alerts.routes import bp as alerts_bp
    from app.api.routes import bp as api_bp
    from app.audit.routes import bp as audit_bp
    from app.auth.routes import bp as auth_bp
    from app.changes.routes import bp as changes_bp
    from app.console.routes import bp as console_bp
    from app.health.routes import bp as health_bp
    from app.incidents import api as incidents_api  # noqa: F401  (its endpoints on the API blueprint)
    from app.incidents import metrics as incidents_metrics  # noqa: F401  (its scrape-time collectors)
    from app.incidents.routes import bp as incidents_bp
    from app.reviews.routes import bp as reviews_bp
    from app.system.routes import bp as system_bp
    from app.workspaces.routes import bp as workspaces_bp

    for blueprint in (health_bp, auth_bp, console_bp, workspaces_bp, audit_bp, incidents_bp, changes_bp, reviews_bp,
                      alerts_bp, system_bp, api_bp):
        app.register_blueprint(blueprint)

    from app.cli import register_cli

    register_cli(app)
    return app


__all__ = ["create_app", "ConfigError"]
