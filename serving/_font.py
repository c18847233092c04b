"""The Korean font of the reports: NanumGothic (SIL Open Font License 1.1), shipped by the PyPI package
``koreanize-matplotlib`` (a pinned dependency).

The package is never imported (its import changes matplotlib's global settings and uses the deprecated
``distutils``); its font file is located through the import system and used two ways:

- charts: the file is registered with matplotlib's font manager and selected per figure (:func:`chart_rc`),
  so Hangul renders in every PNG whatever fonts the machine has;
- HTML: the glyphs a page uses are subset from the same file (fontTools, WOFF) and embedded as a base64
  ``@font-face`` (:func:`font_face_css`), so the page renders Hangul without any system or network font.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import logging
from functools import cache
from pathlib import Path
from typing import Any

from tiecast.common import ConfigError

__all__ = ["FONT_FAMILY", "FONT_LICENSE", "FONT_PACKAGE", "chart_rc", "font_face_css", "font_path",
           "register_font", "subset_font"]

FONT_PACKAGE = "koreanize-matplotlib"
FONT_FAMILY = "NanumGothic"
FONT_FILES = {"regular": "NanumGothic.ttf", "bold": "NanumGothicBold.ttf"}
FONT_LICENSE = "NanumGothic © NAVER Corporation, SIL Open Font License 1.1 (via the PyPI package koreanize-matplotlib)"
# The CSS family name of the embedded font: unique, so a system font of the same name can never stand in for it.
CSS_FAMILY = "TiecastNanumGothic"
# Always kept in a subset: printable ASCII and the punctuation the reports use.
BASE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F)) + "·–—‘’“”…‰×±≥≤→←↑↓▲▼●■□%°²³ "


@cache
def _font_dir() -> Path:
    spec = importlib.util.find_spec("koreanize_matplotlib")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        folder = Path(loc) / "fonts"
        if (folder / FONT_FILES["regular"]).is_file():
            return folder
    raise ConfigError(f"the Korean font is missing: install the package {FONT_PACKAGE} (a tiecast dependency; "
                      f"pip install -c requirements.lock {FONT_PACKAGE})")


def font_path(weight: str = "regular") -> Path:
    """Path of the NanumGothic TrueType file (``regular`` or ``bold``)."""
    if weight not in FONT_FILES:
        raise ConfigError(f"font weight must be one of {', '.join(FONT_FILES)}; got {weight!r}", parameter="weight")
    return _font_dir() / FONT_FILES[weight]


@cache
def register_font() -> str:
    """Register NanumGothic (regular and bold) with matplotlib from its file paths; returns the family name."""
    from matplotlib import font_manager

    for weight in FONT_FILES:
        font_manager.fontManager.addfont(str(font_path(weight)))
    return FONT_FAMILY


def chart_rc() -> dict[str, Any]:
    """matplotlib settings of every report chart (use with ``matplotlib.rc_context``)."""
    return {"font.family": [register_font()], "axes.unicode_minus": False, "font.size": 9,
            "axes.spines.top": False, "axes.spines.right": False, "savefig.dpi": 110}


def subset_font(text: str, weight: str = "regular") -> bytes:
    """A WOFF subset of the font with the glyphs of ``text`` (plus ASCII and common punctuation)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # it reports dropped hinting tables at WARNING
    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = ["*"]
    options.notdef_outline = True  # a character the font lacks shows as a box, never as nothing
    options.hinting = False
    font = TTFont(str(font_path(weight)))
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(set(text) | set(BASE_CHARS))))
    subsetter.subset(font)
    font.flavor = "woff"
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue()


def font_face_css(text: str) -> str:
    """``@font-face`` rules embedding the subset of the regular and bold weights for ``text`` (base64 WOFF)."""
    rules = []
    for weight, css_weight in (("regular", 400), ("bold", 700)):
        data = base64.b64encode(subset_font(text, weight)).decode("ascii")
        rules.append(f"@font-face{{font-family:'{CSS_FAMILY}';font-weight:{css_weight};font-style:normal;"
                     f"src:url(data:font/woff;base64,{data}) format('woff');}}")
    return "\n".join(rules)
