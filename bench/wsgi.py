"""The application under benchmark: the real one plus the bare baseline routes."""

import gc

from app import create_app
from bench.bare import bp

app = create_app()
app.register_blueprint(bp)
gc.freeze()  # as wsgi.py does
