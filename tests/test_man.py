"""The manual page: current with the code, in agreement with --help, and lint-clean."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nvenc_cli import errors, manpage
from tests.conftest import ROOT, run_cli

PAGE = ROOT / "man" / "nvenc.1"
COMMANDS = ("", "encode", "info", "testsrc")
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def page_text() -> str:
    return PAGE.read_text(encoding="utf-8")


def help_options(command: str) -> set[str]:
    """Option names in the first column of ``nvenc [command] --help``, as a user sees it."""
    args = [command, "--help"] if command else ["--help"]
    result = run_cli(*args, env={"NO_COLOR": "1", "TERMINAL_WIDTH": "300"})
    assert result.returncode == 0, result.stderr.decode()
    found: set[str] = set()
    for raw in result.stdout.decode().splitlines():
        row = raw.strip(" │|*\t")
        row = row.lstrip("* ").strip()
        head = re.match(r"^((?:--?[A-Za-z][\w-]*[,\s]+)+)", row + " ")
        if head:
            found.update(_OPTION.findall(head.group(1)))
    return found


def page_section(text: str, command: str) -> str:
    """GLOBAL OPTIONS for the bare command, else the ``.SS "nvenc NAME"`` block."""
    if not command:
        match = re.search(r"^\.SH GLOBAL OPTIONS\n(.*?)^\.SH ", text, re.MULTILINE | re.DOTALL)
    else:
        match = re.search(rf'^\.SS "nvenc {command}"\n(.*?)^\.S[SH] ', text, re.MULTILINE | re.DOTALL)
    assert match, f"no section for {command or 'nvenc'} in {PAGE}"
    return match.group(1)


def page_options(command: str) -> set[str]:
    """Option names on the tag lines (the line after each ``.TP``) of a command's section."""
    lines = page_section(page_text(), command).splitlines()
    found: set[str] = set()
    for prev, line in itertools.pairwise(lines):
        if prev.strip() == ".TP":
            plain = re.sub(r"\\f[BIRP]", "", line).replace("\\-", "-").replace("\\&", "")
            found.update(_OPTION.findall(plain))
    return found


def test_committed_page_is_what_make_man_generates() -> None:
    diff = manpage.stale_diff(PAGE)
    assert not diff, f"man/nvenc.1 is stale: run 'make man'\n{diff}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c or "nvenc")
def test_page_and_help_agree_on_the_options(command: str) -> None:
    shown = help_options(command)
    documented = page_options(command)
    assert "--help" in shown and "-h" in shown, "the --help parser found nothing"
    assert shown == documented, (
        f"only in --help: {sorted(shown - documented)}; only in the page: {sorted(documented - shown)}"
    )


def test_page_documents_every_exit_code_of_the_error_classes() -> None:
    section = re.search(r"^\.SH EXIT STATUS\n(.*?)^\.SH ", page_text(), re.MULTILINE | re.DOTALL)
    assert section
    listed = {int(c) for c in re.findall(r"^\\fB(\d+)\\fR$", section.group(1), re.MULTILINE)}
    codes = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.NvencError) and cls is not errors.NvencError
    }
    assert codes | {0, 2, 70, 130, 143} <= listed


def test_readme_and_page_list_the_same_exit_codes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| (\d+) \|", readme, re.MULTILINE)
    section = re.search(r"^\.SH EXIT STATUS\n(.*?)^\.SH ", page_text(), re.MULTILINE | re.DOTALL)
    assert section and table
    listed = re.findall(r"^\\fB(\d+)\\fR$", section.group(1), re.MULTILINE)
    assert sorted(map(int, table)) == sorted(map(int, listed))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c or "nvenc")
def test_cli_guide_mentions_every_option(command: str) -> None:
    guide = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs" / "cli").glob("*.md")))
    missing = sorted(o for o in page_options(command) if o.startswith("--") and o not in guide)
    assert not missing, f"the CLI guide (docs/cli/) does not mention {missing}"


def test_page_has_the_sections_the_issue_asks_for() -> None:
    text = page_text()
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "INPUTS", "EXIT STATUS", "ENVIRONMENT", "EXAMPLES"):
        assert re.search(rf"^\.SH {heading}$", text, re.MULTILINE), heading
    assert "NO_COLOR" in page_section_named(text, "ENVIRONMENT")


def page_section_named(text: str, name: str) -> str:
    match = re.search(rf"^\.SH {name}\n(.*?)(?:^\.SH |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match
    return match.group(1)


def test_mandoc_lint_is_clean() -> None:
    if shutil.which("mandoc") is None:
        pytest.skip("mandoc is not installed (apt-get install mandoc)")
    out = subprocess.run(["mandoc", "-T", "lint", str(PAGE)], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), out.stdout + out.stderr


def test_groff_has_no_warnings() -> None:
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed (apt-get install groff-base)")
    out = subprocess.run(["groff", "-ww", "-z", "-man", "-Tutf8", str(PAGE)], capture_output=True, text=True)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr


def test_man_renders_it_without_warnings() -> None:
    if shutil.which("man") is None:
        pytest.skip("man is not installed (apt-get install man-db)")
    env = {"LC_ALL": "C.UTF-8", "MANWIDTH": "80", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["man", "--warnings", "-l", str(PAGE)], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    assert "nvenc encode INPUT" in out.stdout


def test_pyproject_installs_the_page_into_man1() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = re.search(r"^\[tool\.setuptools\.data-files\]\n(.*?)(?:^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    assert block and re.search(r'"share/man/man1"\s*=\s*\[\s*"man/nvenc\.1"\s*\]', block.group(1))


def test_check_mode_reports_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "nvenc.1"
    stale.write_text(page_text().replace("Encode frames into a video file.", "Old words."), encoding="utf-8")
    assert manpage.main(["--check", str(stale)]) == 1
    assert manpage.main(["--check", str(PAGE)]) == 0


def test_write_keeps_the_date_while_the_content_is_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "nvenc.1"
    target.write_text(page_text(), encoding="utf-8")
    assert manpage.write(target) is False
    assert target.read_text(encoding="utf-8") == page_text()


def test_roff_escaping() -> None:
    assert manpage.esc("a-b\\c") == "a\\-b\\ec"
    assert manpage.esc("≥ 1 → x…") == "\\(>= 1 \\(-> x\\&..."
    assert manpage.esc("µ") == "\\[u00B5]"
    assert manpage.para(".hidden file")[0].startswith("\\&.")
    assert manpage.para("e.g. this. Next one.") == ["e.g.\\& this.", "Next one."]


def test_generator_runs_as_a_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nvenc_cli.manpage"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0 and out.stdout.startswith('.\\" Generated')
