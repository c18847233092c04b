"""Headless Chromium for reports: print a report to PDF, take a screenshot, read the DOM after the page ran.

Chromium is a system program (Debian package ``chromium``; ``.ci/run`` installs it). Every call uses a fresh
profile folder and switches off the browser's own network traffic (updates, sync, QUIC), so rendering a
self-contained report touches nothing outside the file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tiecast.common import ConfigError, atomic_write

__all__ = ["CHROMIUM_NAMES", "chromium_path", "dump_dom", "print_pdf", "screenshot"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
QUIET_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars")
TIMEOUT = 180


def chromium_path() -> str:
    """The Chromium executable (``TIECAST_CHROMIUM`` overrides), or a :class:`ConfigError` saying how to
    install it."""
    override = os.environ.get("TIECAST_CHROMIUM", "").strip()
    if override:
        if not Path(override).is_file():
            raise ConfigError(f"TIECAST_CHROMIUM={override} is not a file")
        return override
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError("headless Chromium is needed to render PDF reports and was not found (looked for "
                      f"{', '.join(CHROMIUM_NAMES)}); install it, e.g. `apt-get install -y chromium`", parameter="pdf")


def _run(args: list[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="tiecast-chromium-") as profile:
        cmd = [chromium_path(), *QUIET_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise ConfigError(f"Chromium did not finish within {timeout:.0f} s: {' '.join(cmd)}") from exc
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise ConfigError(f"Chromium failed (exit {result.returncode}): {tail}")
    return result


def _url(path: str | Path) -> str:
    return Path(path).resolve().as_uri()


def print_pdf(html: str | Path, pdf: str | Path, budget_ms: int = 5000) -> Path:
    """Print the HTML file ``html`` to ``pdf`` (A4 per the page's ``@page`` rule, no header or footer)."""

    def write(tmp: Path) -> None:
        _run([f"--virtual-time-budget={budget_ms}", "--no-pdf-header-footer", f"--print-to-pdf={tmp}", _url(html)])
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise ConfigError(f"Chromium wrote no PDF for {html}")

    return atomic_write(pdf, write)


def screenshot(html: str | Path, png: str | Path, width: int = 1000, height: int = 1400,
               budget_ms: int = 5000) -> Path:
    """A PNG screenshot of the first ``width`` x ``height`` pixels of the page."""

    def write(tmp: Path) -> None:
        shot = tmp.with_suffix(".shot.png")
        try:
            _run([f"--virtual-time-budget={budget_ms}", "--run-all-compositor-stages-before-draw",
                  f"--window-size={width},{height}", f"--screenshot={shot}", _url(html)])
            shot.replace(tmp)
        finally:
            if shot.exists():
                shot.unlink()

    return atomic_write(png, write)


def dump_dom(html: str | Path, budget_ms: int = 5000) -> str:
    """The page's DOM after its scripts ran (up to ``budget_ms`` of virtual time, e.g. for fonts to load)."""
    return _run([f"--virtual-time-budget={budget_ms}", "--run-all-compositor-stages-before-draw", "--dump-dom",
                 _url(html)]).stdout
