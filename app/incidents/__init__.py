"""Incidents: the board, the detail page, the SOP actions, the timeline and the SLA engine."""

from flask import Blueprint

bp = Blueprint("incidents", __name__)
