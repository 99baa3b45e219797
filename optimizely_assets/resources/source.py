"""Where the export is read from: Optimizely's S3 bucket, or a local directory with the same layout."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from optimizely_assets.e3.layout import account_prefix
from optimizely_assets.e3.parquet_footer import Footer, read_footer


@dataclass(frozen=True)
class SourceObject:
    key: str
    size: int
    etag: str
    last_modified: dt.datetime


class ExportSource(ConfigurableResource):
    """What the assets need from wherever the export lives."""

    remote: ClassVar[bool] = True  # reached over a network (LoaderConfig sizes its thread pools)

    @property
    def root(self) -> str:
        raise NotImplementedError  # account prefix, e.g. ``v1/account_id=123``

    def uri(self, key: str) -> str:
        raise NotImplementedError

    def head(self, key: str) -> SourceObject | None:
        raise NotImplementedError

    def list_objects(self, prefix: str) -> list[SourceObject]:
        raise NotImplementedError

    def list_days(self, type_prefix: str) -> list[str]:
        """The ``date=YYYY-MM-DD`` folders directly under a type prefix (no object listing)."""
        raise NotImplementedError

    def footer(self, obj: SourceObject, value_columns: tuple[str, ...] = ()) -> Footer:
        """The file's footer, read without downloading its body; see ``read_footer``."""
        raise NotImplementedError

    def open_stream(self, key: str) -> Iterator[BinaryIO]:
        raise NotImplementedError

    def local_path(self, key: str) -> str | None:
        """The object as a file on this machine, if it is one (staging may link it, not copy it)."""
        return None


class LocalExportSource(ExportSource):
    """The export as a directory tree (the bucket's root), for the embedded default."""

    root_dir: str = Field(description="Directory that stands for the bucket root.")
    account_id: str = Field(description="Optimizely account id, the account_id=<id> directory.")

    remote: ClassVar[bool] = False
    _resolved: str | None = PrivateAttr(default=None)

    @property
    def root(self) -> str:
        return account_prefix(self.account_id)

    def _path(self, key: str) -> Path:
        return Path(self.root_dir) / key

    def uri(self, key: str) -> str:
        # The root is resolved once, not per file (a realpath walk per call cost 0.3 s a 2,000-file day).
        if self._resolved is None:
            self._resolved = str(Path(self.root_dir).resolve())
        return os.path.normpath(os.path.join(self._resolved, key))

    def _object(self, path: Path | str, key: str) -> SourceObject:
        st = os.stat(path)
        return SourceObject(
            key=key,
            size=st.st_size,
            # mtime+size stands in for an ETag: it changes whenever the file is rewritten.
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
            last_modified=dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc),
        )

    def head(self, key: str) -> SourceObject | None:
        path = self._path(key)
        return self._object(path, key) if path.is_file() else None

    def list_objects(self, prefix: str) -> list[SourceObject]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        # Keys are built as text from the walk (pathlib per file cost ~0.1 ms, 2,000 a day).
        head, start = base.relative_to(self.root_dir).as_posix(), len(str(base))
        head = "" if head == "." else head
        return sorted(
            (
                self._object(p, (head + p[start:].replace(os.sep, "/")).lstrip("/"))
                for d, _, files in os.walk(base)
                for p in (os.path.join(d, f) for f in files)
            ),
            key=lambda o: o.key,
        )

    def list_days(self, type_prefix: str) -> list[str]:
        base = self._path(type_prefix)
        if not base.is_dir():
            return []
        return sorted(
            p.name[len("date=") :] for p in base.iterdir() if p.is_dir() and p.name.startswith("date=")
        )

    def footer(self, obj: SourceObject, value_columns: tuple[str, ...] = ()) -> Footer:
        with open(self._path(obj.key), "rb") as fh:
            size = os.fstat(fh.fileno()).st_size

            def fetch(start: int, end: int) -> bytes:
                fh.seek(start)
                return fh.read(end - start + 1)

            return read_footer(size, fetch, self.uri(obj.key), value_columns)

    @contextmanager
    def open_stream(self, key: str) -> Iterator[BinaryIO]:
        with open(self._path(key), "rb") as fh:
            yield fh

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))
