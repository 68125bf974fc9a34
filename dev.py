#!/usr/bin/env python3
"""Set up and run Opsdesk on a fresh machine with only Python 3.11+.

    python3 dev.py run      create .venv, install, migrate, load demo data, serve with a worker
    python3 dev.py test     create .venv, install with test extras, run the whole test suite

Anything after the command is passed on (`dev.py run --port 8000`, `dev.py test -k audit`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
CHROMIUM = "/usr/bin/chromium"


def say(message: str) -> None:
    print(f"[opsdesk] {message}", flush=True)


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project when pyproject.toml changed since the last install."""
    if sys.version_info < (3, 11):
        sys.exit("[opsdesk] Python 3.11 or newer is required")
    if not VENV_PYTHON.exists():
        say(f"creating virtualenv in {VENV.name}/")
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    say("installing dependencies (first run takes a minute)")
    target = f".[{extras}]" if extras else "."
    subprocess.run([str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(VENV_PYTHON), "-m", "pip", "install", "--quiet", "-e", target], check=True, cwd=ROOT)
    stamp.write_text(digest)


def ensure_chromium() -> None:
    """Install Debian's chromium for the browser journeys when missing and we may; else say why they skip."""
    if os.environ.get("OPSDESK_CHROMIUM") or Path(CHROMIUM).exists():
        return
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        say("installing Debian's chromium for the browser tests")
        result = subprocess.run([apt, "install", "-y", "--no-install-recommends", "chromium"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            subprocess.run([apt, "update"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            result = subprocess.run([apt, "install", "-y", "--no-install-recommends", "chromium"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode == 0 and Path(CHROMIUM).exists():
            return
        reason = f"apt-get install chromium failed: {result.stderr.strip()[-200:]}"
    else:
        reason = "chromium is not installed and this user cannot apt-get install it"
    os.environ["OPSDESK_BROWSER_SKIP_REASON"] = reason
    say("!" * 72)
    say(f"BROWSER TESTS WILL BE SKIPPED: {reason}")
    say("!" * 72)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    os.chdir(ROOT)
    if command == "run":
        ensure_venv("")
        return subprocess.call([str(VENV_PYTHON), "-m", "app.launcher", *rest])
    ensure_venv("test")
    ensure_chromium()
    return subprocess.call([str(VENV_PYTHON), "-m", "pytest", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
