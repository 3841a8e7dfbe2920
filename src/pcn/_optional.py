"""Import of an optional dependency at the point of use, with an error naming the fix.

The library needs only jax, equinox, optax and numpy; a few loaders use a package of the
`experiments` extra, imported when they are called so that `import pcn` stays light."""

from __future__ import annotations

import importlib
from types import ModuleType


def optional_import(module: str, purpose: str, *, package: str | None = None) -> ModuleType:
    """`importlib.import_module(module)`, or an ImportError saying what needs it and how to
    install it (`package` is the distribution name where it differs from `module`)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module.split(".")[0]:
            raise
        raise ImportError(
            f"{purpose} needs the package {package or module!r}, which is not installed: "
            f"pip install {package or module} (or install pcn with the `experiments` "
            "extra: pip install 'pcn[experiments]')."
        ) from error
