"""Optional dependencies, imported only where they are needed, with the command to get them.

torch is an extra (``torch``; ``gpu`` includes it): the common inputs encode without it, so
a plain install stays small. Where a path does need it, the user gets one line with a
command that works from where they stand (exit 69), not an ImportError traceback.

nvenc-cli is installed from a checkout, not from a package index, so an index name such as
``nvenc-cli[torch]`` would fail; the hint names the checkout the running code came from
when there is one, and the packages themselves otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nvenc_cli.errors import UnavailableError

# What each extra adds, as pyproject.toml declares it: the fallback when no checkout is found.
EXTRA_PACKAGES = {
    "torch": "'torch>=2.1'",
    "gpu": "'torch>=2.1' PyNvVideoCodec cvcuda-cu12",
    "ray": "'ray>=2.9'",
    "cloud": "'fsspec>=2023.1' 's3fs>=2023.1' 'aiohttp>=3.8'",
}


def checkout() -> Path | None:
    """The source checkout holding the running package (an editable install, or code run
    from the tree), or None for an installed copy."""
    root = Path(__file__).resolve().parent.parent
    project = root / "pyproject.toml"
    try:
        return root if 'name = "nvenc-cli"' in project.read_text(encoding="utf-8") else None
    except OSError:
        return None


def install_hint(extra: str) -> str:
    """``pip install '/path/to/checkout[torch]'`` where the code runs from a checkout, else
    ``pip install 'torch>=2.1'``: a command that works from any folder."""
    root = checkout()
    if root is not None:
        return f"pip install '{root}[{extra}]'"
    return f"pip install {EXTRA_PACKAGES[extra]}"


def require_torch(purpose: str) -> Any:
    """Import torch for ``purpose`` (e.g. "reading this .pt file"), or say how to get it."""
    try:
        import torch
    except ImportError:
        raise UnavailableError(
            f"{purpose} needs PyTorch, which is not installed: {install_hint('torch')}"
        ) from None
    return torch
