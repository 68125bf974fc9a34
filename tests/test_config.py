"""Configuration: the embedded default when nothing is set, one clear line when something is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Config, ConfigError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("env, message", [
    ({"DATABASE_URL": "mysql://db/x", "REDIS_URL": "redis://r", "SECRET_KEY": "k" * 40}, "postgresql://"),
    ({"DATABASE_URL": "postgresql://db/x", "SECRET_KEY": "k" * 40}, "REDIS_URL is not set"),
    ({"DATABASE_URL": "postgresql://db/x", "REDIS_URL": "redis://r"}, "SECRET_KEY is not set"),
    ({"DATABASE_URL": "postgresql://db/x", "REDIS_URL": "redis://r", "SECRET_KEY": "short"}, "too short"),
    ({"DATABASE_URL": "postgresql://db/x", "REDIS_URL": "http://r", "SECRET_KEY": "k" * 40}, "REDIS_URL must"),
    ({"DATABASE_URL": "postgresql://db/x", "REDIS_URL": "redis://r", "SECRET_KEY": "k" * 40,
      "OPSDESK_SESSION_HOURS": "ten"}, "whole number"),
    ({"DATABASE_URL": "postgresql://db/x", "REDIS_URL": "redis://r", "SECRET_KEY": "k" * 40,
      "SESSION_COOKIE_SECURE": "maybe"}, "true or false"),
])
def test_wrong_settings_fail_with_one_line(env, message):
    with pytest.raises(ConfigError, match=message) as refused:
        Config(env)
    assert "\n" not in str(refused.value)


def test_production_urls_are_normalised_for_psycopg():
    config = Config({"DATABASE_URL": "postgres://u:p@db:5432/ops", "REDIS_URL": "redis://r:6379/1",
                     "SECRET_KEY": "k" * 40})
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u:p@db:5432/ops"
    assert not config.EMBEDDED


def test_nothing_set_means_embedded(tmp_path):
    config = Config({"OPSDESK_INSTANCE_DIR": str(tmp_path)})
    assert config.EMBEDDED and len(config.SECRET_KEY) >= 32
    assert Config({"OPSDESK_INSTANCE_DIR": str(tmp_path)}).SECRET_KEY == config.SECRET_KEY  # kept in instance/
    assert not config.SESSION_COOKIE_SECURE  # plain http on localhost


def test_the_wsgi_entry_point_exits_with_the_one_line():
    env = {**os.environ, "DATABASE_URL": "mysql://db/x", "REDIS_URL": "redis://r", "SECRET_KEY": "k" * 40}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("opsdesk: configuration error: DATABASE_URL must")
