"""Files mtdense writes get the permissions the user's umask asks for.

``safetensors.torch.save_file`` creates its file with mode 0600 whatever the umask, so a
checkpoint written on a cluster was unreadable to the project's group; ``apply_umask`` sets
the mode an ordinary ``open(..., "w")`` would have given (0666 & ~umask).
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: str | Path) -> None:
    """chmod ``path`` to 0666 & ~umask, as if it had been created with ``open``."""
    os.chmod(path, 0o666 & ~current_umask())
