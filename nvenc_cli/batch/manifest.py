"""Manifests: one job per JSON Lines object or CSV row, read whole before any work starts.

A row holds ``input``, ``output`` and any ``nvenc encode`` option by its long name
(``crf``, ``pixel-format`` or ``pixel_format``, ``option`` as a list or a space-separated
string). Turning option names into values is the command line's business (it knows the
options and their types); this module only reads rows and says where each came from.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvenc_cli.errors import InputDataError, InputMissingError

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class Row:
    """One job as written: its fields and where it was (``jobs.csv:4``) for messages."""

    where: str
    fields: dict[str, Any]
    typed: bool = False
    """JSON values carry their own type, which must be the option's (``true`` is no crf,
    ``2.7`` no frame count, ``"false"`` no switch); CSV cells are text, read as the
    command line reads it."""


def read_manifest(path: str) -> list[Row]:
    """Every job of a JSON Lines or CSV manifest (``-`` reads standard input).

    The format comes from the extension (``.csv``; ``.jsonl``, ``.ndjson``, ``.json``),
    else from the first character (``{`` is JSON Lines).
    """
    text = _read_text(path)
    name = "stdin" if path == "-" else path
    suffix = Path(path).suffix.lower()
    if suffix == ".csv" or (suffix not in JSON_SUFFIXES and not text.lstrip().startswith("{")):
        return _csv_rows(text, name)
    return _json_rows(text, name)


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    from nvenc_cli import storage

    if storage.remote(path):
        return storage.read_text(path)
    if storage.is_url(path):
        path = storage.file_path(path)
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputMissingError(f"{path}: no such manifest") from None
    except UnicodeDecodeError:
        raise InputDataError(f"{path}: the manifest is not UTF-8 text") from None
    except OSError as exc:
        raise InputMissingError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from None


def _json_rows(text: str, name: str) -> list[Row]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputDataError(f"{where}: not JSON ({exc.msg}): one job object per line") from None
        except RecursionError:
            raise InputDataError(f"{where}: not a job: nested too deeply") from None
        if not isinstance(value, dict):
            raise InputDataError(f"{where}: a job must be a JSON object, not {type(value).__name__}")
        rows.append(Row(where, value, typed=True))
    return rows


def _csv_rows(text: str, name: str) -> list[Row]:
    try:
        return _csv_records(text, name)
    except csv.Error as exc:
        raise InputDataError(f"{name}: not a CSV manifest ({exc})") from None


def _csv_records(text: str, name: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text), strict=True)
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "input" not in header:
        raise InputDataError(f"{name}:1: a CSV manifest needs a header row with an 'input' column")
    reader.fieldnames = header
    rows = []
    for record in reader:
        where = f"{name}:{reader.line_num}"
        if None in record:
            raise InputDataError(f"{where}: more values than the header has columns")
        cells = {k: v.strip() for k, v in record.items() if v is not None and v.strip() != ""}
        if cells:
            rows.append(Row(where, cells))
    return rows
