"""The command-line reference as Markdown, built from the Typer app like the man page.

The documentation site's reference page (``docs/reference/cli.md``) holds only markers; the
MkDocs hook in ``docs/hooks.py`` replaces them with :func:`cli_markdown` and
:func:`exit_codes_markdown` at build time, so the page and ``--help`` cannot drift.

    python -m nvenc_cli.reference      # the Markdown on stdout
"""

from __future__ import annotations

import re
import sys
from typing import Any

from nvenc_cli import manpage

CLI_MARKER = "<!-- nvenc:cli-reference -->"
EXIT_MARKER = "<!-- nvenc:exit-codes -->"


def _plain(markup: str) -> str:
    """The man page's ``**bold**``/``__italic__`` prose markup as Markdown code and emphasis."""
    text = re.sub(r"\*\*(.+?)\*\*", r"`\1`", markup)
    return re.sub(r"__(.+?)__", r"*\1*", text)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _names(param: Any) -> str:
    if not manpage.is_option(param):
        return f"`{param.metavar or param.name.upper()}`"
    names = [*param.opts, *getattr(param, "secondary_opts", [])]
    names.sort(key=lambda n: (n.startswith("--"), n))  # short form first, as in the man page
    value = manpage.metavar(param)
    return ", ".join(f"`{n}`" for n in names) + (f" `{value}`".replace("|", "\\|") if value else "")


def _details(param: Any) -> str:
    extras = []
    if getattr(param, "multiple", False):
        extras.append("Repeatable.")
    if manpage.is_option(param) and param.required:
        extras.append("Required.")
    low = manpage._range_text(param)
    if low:
        extras.append(low)
    default = manpage._default_text(param)
    if default is not None:
        extras.append(f"Default: `{default}`.")
    return _cell(" ".join([(param.help or "").strip(), *extras]))


def _table(params: list[Any]) -> list[str]:
    rows = ["| option | meaning |", "|---|---|"]
    return rows + [f"| {_names(p)} | {_details(p)} |" for p in params]


def cli_markdown() -> str:
    """Every command, its synopsis and every option, grouped as ``--help`` groups them."""
    group, ctx = manpage.command_tree()
    lines = ["## Global options", "", *_table(manpage.visible_params(group, ctx)), ""]
    for name, cmd, sub in manpage.subcommands(group, ctx):
        words = getattr(cmd, "options_metavar", None) or "[OPTIONS]"
        args = [p for p in manpage.visible_params(cmd, sub) if not manpage.is_option(p)]
        synopsis = " ".join([f"nvenc {name}", *(str(a.metavar or a.name.upper()) for a in args), words])
        lines += [f"## nvenc {name}", "", f"`{synopsis}`", "", _cell(cmd.help or ""), ""]
        panels: dict[str, list[Any]] = {}
        for param in manpage.visible_params(cmd, sub):
            panel = "Arguments" if not manpage.is_option(param) else "Options"
            panel = getattr(param, "rich_help_panel", None) or panel
            panels.setdefault(panel, []).append(param)
        for panel, params in panels.items():
            lines += [f"### {panel}", "", *_table(params), ""]
    return "\n".join(lines)


def exit_codes_markdown() -> str:
    """The exit codes, from the man page's EXIT STATUS list."""
    rows = ["| code | meaning |", "|---|---|"]
    rows += [f"| {_plain(code)} | {_cell(_plain(text))} |" for code, text in manpage.EXIT_STATUS]
    return "\n".join(rows)


def fill(markdown: str) -> str:
    """Replace the reference markers in a page's Markdown."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_markdown())
    if EXIT_MARKER in markdown:
        markdown = markdown.replace(EXIT_MARKER, exit_codes_markdown())
    return markdown


if __name__ == "__main__":
    sys.stdout.write(cli_markdown() + "\n\n" + exit_codes_markdown() + "\n")
