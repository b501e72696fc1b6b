"""One job: the `imagefolder:<path>` task kind, any `<path>/{train,test}/<class>/<image>` tree
(`val/` when it has no `test/`); its classes are its folder names.
"""

from __future__ import annotations

from pathlib import Path

from errors import UserError
from trainables.data.decode import load_imagefolder_tree
from trainables.data.registry import Splits, register


@register("imagefolder", sources=lambda arg, data_root: [Path(arg).expanduser()], arg="path")
def load_imagefolder(arg: str, data_root: Path) -> Splits:
    """`<path>/train/<class>/<image>` and the held-out `<path>/test/` (else `<path>/val/`)."""
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise UserError(
            f"imagefolder task: {root} is not a folder (expected <path>/train and <path>/test "
            "or <path>/val)"
        )
    return load_imagefolder_tree(root, None)
