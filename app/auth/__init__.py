"""Signing in and out of the console, sessions, passwords and sign-in throttling."""

from flask import Blueprint

bp = Blueprint("auth", __name__)
