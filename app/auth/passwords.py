"""Password hashing with argon2id (a deliberately slow hash), tuned from the configuration."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

MIN_PASSWORD_LENGTH = 10


def _hasher() -> PasswordHasher:
    hasher = current_app.extensions.get("opsdesk_password_hasher")
    if hasher is None:
        hasher = PasswordHasher(time_cost=current_app.config["PASSWORD_TIME_COST"],
                                memory_cost=current_app.config["PASSWORD_MEMORY_KIB"], parallelism=1)
        current_app.extensions["opsdesk_password_hasher"] = hasher
    return hasher


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash (unknown user) still spend the same time, then refuse."""
    hasher = _hasher()
    if password_hash is None:
        dummy = current_app.extensions.get("opsdesk_dummy_hash")
        if dummy is None:
            dummy = current_app.extensions["opsdesk_dummy_hash"] = hasher.hash("not-a-real-password")
        try:
            hasher.verify(dummy, password)
        except VerificationError:
            pass
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is unacceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 256:
        return "Use at most 256 characters."
    return None
