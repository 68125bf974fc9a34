"""The real SMTP and HTTP receivers (tests/receivers.py) for this package's tests."""

from tests.receivers import http_receiver, smtp_server  # noqa: F401
