"""Optional dependencies, imported only where they are needed, with the extra to install.

torch is an extra (``nvenc-cli[torch]``; ``[gpu]`` includes it): the common inputs encode
without it, so a plain install stays small. Where a path does need it, the user gets one
line naming the extra (exit 69), not an ImportError traceback.
"""

from __future__ import annotations

from typing import Any

from nvenc_cli.errors import UnavailableError


def require_torch(purpose: str) -> Any:
    """Import torch for ``purpose`` (e.g. "reading this .pt file"), or say how to get it."""
    try:
        import torch
    except ImportError:
        raise UnavailableError(
            f"{purpose} needs PyTorch, which is not installed: pip install 'nvenc-cli[torch]' "
            "(from a checkout: pip install '.[torch]')"
        ) from None
    return torch
