"""The operator's data folder: registries offered by name, never a path outside the folder.

An operator points the app at one folder on the server (``HER2ER_DATA_DIR`` or ``data_dir`` in
the ``[her2er]`` section of ``.streamlit/secrets.toml``). Its entries are the Parquet files at its
top level and the sub-folders holding Parquet files (a registry split into several files). Users
pick an entry by name; a name is only ever looked up among the entries, and every file an entry
reads must resolve inside the folder: ``..``, absolute paths, and symbolic links that lead out
of the folder are refused.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..errors import CohortError

SUFFIX = ".parquet"


class DataFolder:
    """The registries of one server-side folder (see the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        path = Path(root)
        if not path.is_dir():
            raise CohortError(f"The data folder {path} does not exist or is not a folder.")
        self.root = path.resolve(strict=True)

    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve(strict=True).is_relative_to(self.root)
        except (OSError, RuntimeError):  # a broken or looping link
            return False

    def _files(self, entry: Path) -> list[Path]:
        """The Parquet files of an entry, all inside the folder; [] when any is not."""
        if entry.is_file():
            return [entry] if entry.suffix.lower() == SUFFIX and self._inside(entry) else []
        files = []
        for current, folders, names in os.walk(entry, followlinks=False):
            folders[:] = sorted(f for f in folders if not f.startswith("."))
            for link in folders:  # a linked folder inside is walked only if it stays inside
                if (Path(current) / link).is_symlink() and not self._inside(Path(current) / link):
                    return []
            for name in sorted(names):
                if name.startswith(".") or not name.lower().endswith(SUFFIX):
                    continue
                path = Path(current) / name
                if not self._inside(path):
                    return []
                files.append(path)
        return files

    def entries(self) -> list[str]:
        """Names of the registries offered (files, then folders, sorted)."""
        out = []
        for path in sorted(self.root.iterdir(), key=lambda p: (p.is_dir(), p.name.lower())):
            if path.name.startswith(".") or not self._inside(path):
                continue
            if self._files(path):
                out.append(path.name)
        return out

    def resolve(self, name: str) -> list[Path]:
        """The files of the registry ``name`` (an entry of :meth:`entries`), or CohortError."""
        text = str(name)
        parts = PurePosixPath(text.replace("\\", "/")).parts
        if (not text or os.path.isabs(text) or "/" in text or "\\" in text or ".." in parts
                or text.startswith(".")):
            raise CohortError(f"{text!r} is not a registry of the data folder: choose one of "
                              "the names it offers.")
        # The entry itself is checked as entries() would list it, without walking the whole
        # folder: the app resolves its registry on every script run (a dozen times per page).
        entry = self.root / text
        files = self._files(entry) if (entry.exists() or entry.is_symlink()) \
            and self._inside(entry) else []
        if not files:
            raise CohortError(f"{text!r} is not a registry of the data folder (it offers "
                              f"{len(self.entries())}): choose one of the names it offers.")
        return [f.resolve(strict=True) for f in files]

    def open(self, name: str, **options):
        """The :class:`~her2er_dash.engine.Registry` of entry ``name``."""
        from .registry import Registry

        return Registry.open(self.resolve(name), name=name, **options)
