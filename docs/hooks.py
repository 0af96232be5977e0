"""MkDocs hook: fill the reference pages from the Typer app at build time (see
nvenc_cli/reference.py), so they always match ``nvenc --help``."""

from __future__ import annotations

from typing import Any

from nvenc_cli.reference import fill


def on_page_markdown(markdown: str, **_: Any) -> str:
    return fill(markdown)
