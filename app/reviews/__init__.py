"""Post-incident reviews: the PIR of an incident, reviewer sign-off, action items across incidents."""

from flask import Blueprint

bp = Blueprint("reviews", __name__)
