"""Turn domain errors and HTTP errors into a full page, an HTMX alert fragment, or API JSON."""

from __future__ import annotations

import logging

import redis
from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from app.errors import DomainError, TooManyRequests
from app.extensions import db
from app.htmx import retarget, wants_fragment

log = logging.getLogger(__name__)

TITLES = {400: "Bad request", 401: "Sign in required", 403: "Not allowed", 404: "Not found",
          405: "Method not allowed", 409: "Not possible now", 413: "Too large", 422: "Check the fields",
          429: "Too many requests", 500: "Something went wrong", 503: "Temporarily unavailable"}
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_fields",
         429: "rate_limited", 500: "internal_error", 503: "unavailable"}


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, message: str, *, code: str | None = None, fields: dict | None = None):
    code = code or CODES.get(status, "error")
    if is_api_request():
        body = {"code": code, "message": message}
        if fields:
            body["fields"] = fields
        return jsonify(error=body), status
    context = dict(status=status, title=TITLES.get(status, "Error"), message=message, fields=fields or {})
    if wants_fragment():
        response = make_response(render_template("errors/_alert.html", **context), status)
        return retarget(response, "#messages", "afterbegin")
    return render_template("errors/error.html", **context), status


def init_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(error: DomainError):
        db.session.rollback()
        response = error_response(error.status, error.message, code=error.code, fields=error.fields)
        if isinstance(error, TooManyRequests):
            response = make_response(response)
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        return error_response(400, "This form has expired or did not come from Opsdesk. Reload the page and "
                                   "try again.", code="csrf_failed")

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        messages = {404: "There is nothing here, or it is outside your access.",
                    405: "That method is not allowed here."}
        message = messages.get(error.code) or error.description or TITLES.get(error.code, "Error")
        return error_response(error.code or 500, message)

    @app.errorhandler(redis.RedisError)
    def _redis_down(error: Exception):
        log.warning("redis unavailable: %s", error)
        return error_response(503, "Redis is not answering; try again in a moment.")

    @app.errorhandler(DBAPIError)
    def _database_error(error: DBAPIError):
        db.session.rollback()
        if error.connection_invalidated or "connection" in str(error.orig).lower():
            log.warning("database unavailable: %s", error.orig)
            return error_response(503, "The database is not answering; try again in a moment.")
        log.exception("database error")
        return error_response(500, "Something went wrong and nothing was changed. The error was logged.")

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        db.session.rollback()
        log.exception("unhandled error")
        return error_response(500, "Something went wrong and nothing was changed. The error was logged.")
