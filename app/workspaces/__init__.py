"""Workspaces, tenants and memberships: who belongs where, with which role."""

from flask import Blueprint

bp = Blueprint("workspaces", __name__)
