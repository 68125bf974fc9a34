"""The WSGI entry point: `gunicorn wsgi:app` and `flask --app wsgi …`."""

import gc
import sys

from app import ConfigError, create_app

try:
    app = create_app()
except ConfigError as error:
    sys.stderr.write(f"opsdesk: configuration error: {error}\n")
    raise SystemExit(2) from None

# What the application built at start-up lives as long as the process: take it out of the cyclic
# collector's sweeps, which otherwise walk all of it every few hundred requests (a pause of tens of
# milliseconds that lands on some unlucky request).
gc.freeze()
