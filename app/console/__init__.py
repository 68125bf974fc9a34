"""The console shell: the start page, the workspace/tenant switcher, navigation."""

from flask import Blueprint

bp = Blueprint("console", __name__)
