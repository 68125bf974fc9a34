"""In-app alerts: what the console raises for a role (an SLA breach for incident managers, …)."""

from flask import Blueprint

bp = Blueprint("alerts", __name__)
