"""Which visitors a request names, and their salted hashes (the only form the project keeps).

A request's ids are validated before anything is touched: an empty id or one with control
characters is an error naming its position (never the id: it is personal data). The hash is
SHA-256 over the salt, a NUL and the id: the salt is a secret of the deployment
(``OPTIMIZELY_FORGET_SALT``; on the embedded default a random one in the local directory), so
the suppression table cannot be reversed by hashing candidate ids.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

MAX_ID_CHARS = 1024  # Optimizely's visitor ids are strings of at most a few hundred characters


class VisitorIdError(ValueError):
    pass


def validate(ids: list[str], where: str) -> list[str]:
    """The distinct ids, in order; an empty, over-long or control-character id names its place."""
    out: dict[str, None] = {}
    for i, raw in enumerate(ids, 1):
        vid = raw.strip()
        if not vid:
            raise VisitorIdError(f"{where}: visitor id #{i} is empty")
        if len(vid) > MAX_ID_CHARS:
            raise VisitorIdError(f"{where}: visitor id #{i} is longer than {MAX_ID_CHARS} characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in vid):
            raise VisitorIdError(f"{where}: visitor id #{i} holds a control character")
        out[vid] = None
    if not out:
        raise VisitorIdError(f"{where}: no visitor id given")
    return list(out)


def read_id_file(path: Path) -> list[str]:
    """One id per line; blank lines and lines starting with # are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise VisitorIdError(
            f"--file {path}: {exc.__class__.__name__}: cannot be read as UTF-8 text"
        ) from None
    kept = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return validate(kept, f"--file {path}")


def visitor_hash(salt: str, visitor_id: str) -> str:
    return hashlib.sha256(f"{salt}\x00{visitor_id}".encode()).hexdigest()


LOCAL_SALT_FILE = "forget_salt"


def local_salt(local_dir: Path) -> str:
    """The embedded default's salt: made once, random, readable by the owner only."""
    path = local_dir / LOCAL_SALT_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


class SaltMissingError(RuntimeError):
    pass


def deployment_salt(env_var: str, local_dir: Path | None) -> str:
    """The salt from ``env_var``; on the embedded default (``local_dir``), the local one."""
    value = os.environ.get(env_var, "").strip()
    if value:
        return value
    if local_dir is not None:
        return local_salt(local_dir)
    raise SaltMissingError(
        f"{env_var} is not set: forgotten visitors are kept as salted hashes, and the salt must be "
        "the same for every run (set it as a secret of the deployment, at least 32 random characters)"
    )
