"""The index folder's manifest, and the rules that keep the folder whole.

The manifest is the one file that says what the folder holds and how it was built. It is
read before anything else, so every key a reader relies on is checked for type here, and
a damaged manifest is a StoreError that says what to run. It is also the commit point:
data files are written under fresh names and synced, then the manifest naming them is
swapped in with os.replace, by one writer at a time (the folder's lock).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from rag.chunking import SENTENCE_RULE
from rag.embed import DIM, MODEL_NAME
from rag.errors import StoreError

# 2: document texts, pages and headings stored in the index; chunk ids; extraction version.
# 3: documents and chunks in SQLite; vectors as a base, a delta and removed ids.
FORMAT_VERSION = 3
MANIFEST = "manifest.json"
LOCK_FILE = ".lock"
# A rebuild may hold the lock throughout: 100k chunks embed in ~35 min at the ~50 chunks/s
# the README measures. A lock dies with its process, so a longer wait means a hung writer.
LOCK_TIMEOUT_S = 3600.0
# Which folders this thread holds the lock of, so save can run inside a caller's lock.
_held = threading.local()
_SHA256 = re.compile(r"[0-9a-f]{64}")
# The type of every manifest key that load, check_compatible or the sync relies on.
_SHAPE: dict[str, type] = {
    "format_version": int,
    "embedding_model": str,
    "dim": int,
    "chunking": dict,
    "extraction_version": str,
    "corpus_files": dict,
    "corpus_stats": dict,
    "skipped": dict,
    "documents": list,
    "chunk_count": int,
    "next_id": int,
    "chunks_file": str,
    "vectors_file": str,
    "vectors_sha256": str,
    "vectors_size": int,
    "delta_file": str,
    "delta_sha256": str,
    "removed_file": str,
    "removed_sha256": str,
    "document_ids": list,
    "retired_ids": list,
    "next_document_id": int,
}


class OlderFormat(StoreError):
    """The index was written by an older rag; rebuilding it is safe and says so."""


def expected_settings(chunk_chars: int, overlap: int) -> dict[str, Any]:
    """The manifest fields that must match the running settings for an index to be usable."""
    return {
        "format_version": FORMAT_VERSION,
        "embedding_model": MODEL_NAME,
        "dim": DIM,
        "chunking": {
            "max_chars": chunk_chars,
            "overlap_sentences": overlap,
            "sentence_rule": SENTENCE_RULE,
        },
    }


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest, or None when no index was ever built here."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"index manifest {path} is unreadable ({exc}); run `rag index`") from None
    if not isinstance(manifest, dict):
        raise StoreError(f"index manifest {path} is corrupt; run `rag index`")
    version = manifest.get("format_version")
    if isinstance(version, int) and _is_int(version) and version != FORMAT_VERSION:
        kind = OlderFormat if version < FORMAT_VERSION else StoreError
        raise kind(
            f"index in {folder} has format version {version}, this rag reads version "
            f"{FORMAT_VERSION}; run `rag index` to rebuild it"
        )
    problem = _shape_problem(manifest)
    if problem:
        raise StoreError(f"index manifest {path} is corrupt ({problem}); run `rag index`")
    rule = sentence_rule(manifest["chunking"])
    if rule != SENTENCE_RULE:
        kind = OlderFormat if _is_int(rule) and rule < SENTENCE_RULE else StoreError
        raise kind(
            f"index in {folder} was cut into sentences by rule {rule}, this rag cuts by rule "
            f"{SENTENCE_RULE}; run `rag index` to rebuild it"
        )
    return manifest


def sentence_rule(chunking: Mapping[str, Any]) -> Any:
    """The rule an index's sentences were cut by (rag.chunking). Before the rule was
    recorded, sentences were cut by rule 1."""
    return chunking.get("sentence_rule", 1)


def check_compatible(
    manifest: dict[str, Any], expected: dict[str, Any], folder: Path | str
) -> None:
    """Raise when the index was built with other settings than the ones running now."""
    for key, want in expected.items():
        have = manifest.get(key)
        if have != want:
            raise StoreError(
                f"index in {folder} was built with {key}={have!r}, but {want!r} is configured; "
                "run `rag index` to rebuild it"
            )


def _shape_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with the manifest's keys and types, if anything."""
    for key, kind in _SHAPE.items():
        value = manifest.get(key)
        if not (_is_int(value) if kind is int else isinstance(value, kind)):
            return f"{key!r} is missing or not {kind.__name__}"
    chunking = manifest["chunking"]
    if not all(_is_int(chunking.get(k)) for k in ("max_chars", "overlap_sentences")):
        return "'chunking' lacks max_chars or overlap_sentences"
    for key in ("corpus_files", "skipped"):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in manifest[key].items()):
            return f"{key!r} is not a table of names to strings"
    if not all(
        isinstance(v, list) and len(v) == 2 and all(_is_int(n) for n in v)
        for v in manifest["corpus_stats"].values()
    ):
        return "'corpus_stats' is not a table of [size, mtime]"
    if not all(isinstance(d, str) for d in manifest["documents"]):
        return "'documents' is not a list of names"
    for key in ("chunks_file", "vectors_file", "delta_file", "removed_file"):
        # A bare name in this folder: a path could point load (and its checks) elsewhere.
        if manifest[key] in ("", ".", "..", MANIFEST) or Path(manifest[key]).name != manifest[key]:
            return f"{key!r} is not a file name"
    for key in ("vectors_sha256", "delta_sha256", "removed_sha256"):
        if not _SHA256.fullmatch(manifest[key]):
            return f"{key!r} is not a SHA-256"
    if manifest["dim"] < 1 or manifest["chunk_count"] < 0 or manifest["next_id"] < 0:
        return "'dim', 'chunk_count' or 'next_id' is out of range"
    for key in ("document_ids", "retired_ids"):
        if not all(_is_int(i) and 0 <= i < manifest["next_document_id"] for i in manifest[key]):
            return f"{key!r} is not a list of document row ids"
    if len(manifest["document_ids"]) != len(manifest["documents"]):
        return "'document_ids' does not match 'documents'"
    if len(set(manifest["document_ids"])) != len(manifest["document_ids"]):
        return "'document_ids' repeats an id"
    return None


def _is_int(value: object) -> bool:
    # JSON true and false load as bool, which Python counts as int.
    return isinstance(value, int) and not isinstance(value, bool)


def check_writable(folder: Path) -> None:
    """Raise unless an index can be written in `folder`, creating it; run before embedding."""
    probe = folder / f".write-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise unwritable(folder, exc) from None


@contextmanager
def lock(folder: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the folder's write lock, reentrant in one thread; others wait up to `timeout` s."""
    held: set[Path] = _held.__dict__.setdefault("folders", set())
    key = folder.resolve()
    if key in held:
        # The caller holds it across a whole rebuild, and save takes it again inside.
        yield
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        file_lock = FileLock(folder / LOCK_FILE)
        file_lock.acquire(timeout=timeout)
    except Timeout:
        raise StoreError(
            f"another process has been writing the index in {folder} for over {timeout:g} s; "
            "try again when it has finished"
        ) from None
    except OSError as exc:
        raise unwritable(folder, exc) from None
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)
        file_lock.release()


def unwritable(folder: Path, exc: OSError) -> StoreError:
    if folder.exists() and not folder.is_dir():
        reason = "it is a file, not a folder"
    elif isinstance(exc, NotADirectoryError):
        reason = "a folder above it is a file"
    else:
        reason = exc.strerror or str(exc)
        if exc.filename and Path(exc.filename) != folder:
            reason = f"{exc.filename}: {reason}"
    return StoreError(f"cannot write the index in {folder}: {reason}; pass --index DIR")


def write_atomic(path: Path, data: bytes) -> None:
    # The random part keeps two threads of one process off each other's temporary file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fsync(path: Path) -> None:
    """Sync a file's data, or a folder's renames (a rename is durable only once the folder
    holding it is synced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
