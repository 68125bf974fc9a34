"""Sending to the outside world: SMTP e-mail and signed JSON webhooks.

Shared by communications and alert deliveries. Both raise `DeliveryError` with a message that is
safe to store on the row and show on a page: the error's kind and the relay's host, never the
webhook URL (it may carry a token), a secret, or a stack trace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage

TIMEOUT_SECONDS = 10
USER_AGENT = "Opsdesk-Webhook/1"


class DeliveryError(RuntimeError):
    """A delivery attempt failed; the message is safe to store and show."""


def send_email(host: str, port: int | None, from_address: str, to_addresses: list[str], subject: str, body: str,
               message_id: str) -> None:
    """Send one plain-text message through an SMTP relay."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = from_address
    message["To"] = ", ".join(to_addresses or [])
    message["Message-ID"] = message_id
    message.set_content(body)
    try:
        with smtplib.SMTP(host, port or 25, timeout=TIMEOUT_SECONDS) as smtp:
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryError(f"SMTP delivery to {host}:{port or 25} failed: {error.__class__.__name__}") from None


def webhook_signature(secret: str, body: bytes) -> str:
    """The `X-Opsdesk-Signature` value: HMAC-SHA256 of the exact body, hex, prefixed `sha256=`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_signed_json(url: str, secret: str | None, event: str, delivery_id: str, payload: dict) -> None:
    """POST `payload` as JSON, signed with `secret`; any answer but 2xx is a failure."""
    body = json.dumps(payload, default=str).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        "X-Opsdesk-Event": event, "X-Opsdesk-Delivery": str(delivery_id),
        "X-Opsdesk-Signature": webhook_signature(secret or "", body)})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            if not 200 <= response.status < 300:
                raise DeliveryError(f"webhook answered HTTP {response.status}")
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"webhook answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise DeliveryError(f"webhook could not be reached: {error.__class__.__name__}") from None
