"""Atomic writes: outputs are written to a temporary file beside the target, then renamed into place, so a
failure never leaves a half-written file or destroys an existing one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ._errors import ConfigError

__all__ = ["atomic_write", "check_table_path", "write_table"]

TABLE_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and rename the result to ``path`` (created parents included)."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}; choose a writable location") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.replace(target)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}; choose a writable location") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def check_table_path(path: str | Path) -> None:
    """Raise :class:`ConfigError` early (before long work) when ``path`` has no supported table suffix."""
    if not str(path).endswith(TABLE_SUFFIXES):
        raise ConfigError(f"cannot write {path}: use one of the suffixes {', '.join(TABLE_SUFFIXES)}")


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV (UTF-8), gzip CSV or Parquet, chosen by the file suffix, atomically."""
    check_table_path(path)
    name = str(path)
    if name.endswith(".parquet"):
        return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
    if name.endswith(".csv.gz"):
        return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, compression="gzip"))
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
