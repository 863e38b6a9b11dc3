"""Finding manifest files, reading the ones that changed, and merging them into one set.

A scan walks the given paths in order, stats every manifest file and compares the result
with the previous scan's record of that file: the same ``stat`` means the same content, a new
``stat`` with the same content hash means a touch, and only new content is parsed. A file
that cannot be read or parsed keeps the objects of its last good version.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Final

import attrs

from meshclient.errors import ConfigError
from meshclient.model import Object, ObjectKey
from meshclient.sources._errors import ManifestConfigError, ManifestError, Origin, same_error
from meshclient.sources._yaml import parse_manifest
from meshclient.store import kind_of

__all__ = [
    "SUFFIXES", "FileStat", "ManifestFile", "ManifestSet", "StrPath", "Tally", "load_manifests",
    "merge", "normalize_paths", "scan",
]

StrPath = str | os.PathLike[str]

SUFFIXES: Final[tuple[str, ...]] = (".yaml", ".yml", ".json")
"""Files read from directories. A file named explicitly is read whatever its name."""

# A file changed again within the filesystem's timestamp granularity after we read it would
# keep its old stat; as git does for its index ("racy git"), such a recent stat is not
# trusted, and the file is read and hashed once more on the next scan (not parsed unless the
# hash differs). Two seconds covers FAT and most network filesystems.
_RACY_NS: Final = 2_000_000_000


@attrs.frozen
class FileStat:
    """What identifies a file version without reading it."""

    mtime_ns: int
    ctime_ns: int
    """Changes with any write or chmod, even when a copy restores the old mtime."""
    size: int
    inode: int
    device: int
    racy: bool = attrs.field(default=False, eq=False)
    """The file was modified so recently when statted that the same stat may hide a change."""

    @classmethod
    def of(cls, st: os.stat_result, now_ns: int) -> FileStat:
        return cls(st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev,
                   racy=now_ns - st.st_mtime_ns < _RACY_NS)

    def unchanged(self, current: FileStat) -> bool:
        """Whether ``current`` (a newer stat of the same path) proves the content is the same."""
        return not self.racy and self == current


@attrs.frozen(kw_only=True)
class ManifestFile:
    """One manifest file as last scanned.

    ``objects``, ``origins`` and ``errors`` belong to the version being served: the current
    content when ``ok``, otherwise the last version that parsed (nothing if none did), and
    ``failure`` says why the current content is not used.
    """

    path: str
    stat: FileStat | None = None
    """None when the file could not be statted."""
    digest: str | None = None
    """SHA-256 of the content last read; None when it could not be read."""
    served: str | None = None
    """SHA-256 of the version whose objects are served; None if no version ever parsed."""
    objects: tuple[Object, ...] = ()
    """Every object the served version holds, duplicates of other files' objects included."""
    origins: tuple[Origin, ...] = ()
    """Where each of ``objects`` was read, index for index."""
    errors: tuple[ManifestConfigError | ManifestError, ...] = ()
    """Object and document errors of the served version."""
    failure: ManifestError | None = None
    """Why the file's current content is not served (missing, unreadable, invalid syntax)."""

    @property
    def ok(self) -> bool:
        """Whether the file's current content was read and parsed."""
        return self.failure is None


ManifestProblem = ConfigError | ManifestError


@attrs.frozen(kw_only=True, eq=False)
class ManifestSet:
    """Everything read from a set of manifest paths, in path order."""

    objects: tuple[Object, ...]
    """The objects to serve: the first of each kind/namespace/name in path order."""
    errors: tuple[ManifestProblem, ...]
    """Every problem, each naming its file: file failures, document and object errors, and
    duplicates (at the duplicate's location, naming where the kept one is)."""
    files: tuple[ManifestFile, ...]
    """One record per file (and per missing path or unlistable directory)."""
    origins: Mapping[ObjectKey, Origin]
    """Where each served object was read."""

    @property
    def config_errors(self) -> tuple[ConfigError, ...]:
        """The errors about objects (each a ``ManifestConfigError``), for ``Store.replace``."""
        return tuple(e for e in self.errors if isinstance(e, ConfigError))

    @property
    def failed(self) -> tuple[ManifestFile, ...]:
        """The files whose current content is not served."""
        return tuple(f for f in self.files if not f.ok)


@attrs.define(eq=False)
class Tally:
    """Counts of file reads and parses, kept across scans."""

    reads: int = 0
    parses: int = 0


def normalize_paths(paths: Sequence[StrPath] | StrPath) -> tuple[str, ...]:
    """The paths as strings; a single path is accepted for a one-element sequence.

    Raises:
        TypeError: A path is bytes or not a path at all.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    out: list[str] = []
    for path in paths:
        text = os.fspath(path)
        if not isinstance(text, str):
            raise TypeError(f"paths: {path!r} is not a str or os.PathLike[str]")
        out.append(text)
    return tuple(out)


def load_manifests(
    paths: Sequence[StrPath] | StrPath, *, namespace: str = "default",
) -> ManifestSet:
    """Read manifests from YAML/JSON files and directories.

    Directories are walked recursively in name order for ``.yaml``, ``.yml`` and ``.json``
    files, skipping hidden files and directories (Kubernetes ConfigMap volumes keep their
    data in hidden ``..data`` directories behind visible symlinks, which are followed). YAML
    files may hold several documents; ``kind: List`` and typed lists (``HTTPRouteList``) are
    unpacked; empty documents are skipped; kinds meshclient does not read are ignored.

    Args:
        paths: Files and directories; a single path is accepted too.
        namespace: For objects that do not name their own.

    Returns:
        The objects and every problem found, each naming its file. Nothing is raised for
        missing, unreadable or invalid files: they are reported in ``errors``.
    """
    return merge(scan(normalize_paths(paths), namespace, {}, Tally()))


def scan(
    roots: Sequence[str], namespace: str, previous: Mapping[str, ManifestFile], tally: Tally,
) -> list[ManifestFile]:
    """Records for every file under ``roots``, re-reading only what changed since ``previous``.

    A record that did not change is returned as the same object, so callers can tell changes
    by identity or equality.
    """
    files: list[ManifestFile] = []
    for kind, path in _discover(roots):
        if kind == "unlisted":
            # Files under a directory we cannot list right now are not known to be gone.
            files.append(_failed(previous.get(path), ManifestError(
                path, "Unreadable", "is a directory that cannot be listed"), None, None))
            inside = path.rstrip(os.sep) + os.sep
            files.extend(f for p, f in previous.items() if p.startswith(inside))
            continue
        record = _refresh(path, kind == "explicit", namespace, previous.get(path), tally)
        if record is not None:
            files.append(record)
    return files


def merge(files: Sequence[ManifestFile]) -> ManifestSet:
    """One ``ManifestSet`` from file records in path order; the first of duplicates wins."""
    objects: list[Object] = []
    errors: list[ManifestProblem] = []
    origins: dict[ObjectKey, Origin] = {}
    for record in files:
        if record.failure is not None:
            errors.append(record.failure)
        errors.extend(record.errors)
        for obj, origin in zip(record.objects, record.origins, strict=True):
            key = ObjectKey(kind_of(obj), obj.meta.namespace, obj.meta.name)
            first = origins.get(key)
            if first is not None:
                errors.append(ManifestError(
                    origin.path, "Duplicate",
                    f"{key} is also defined at {first}; keeping that one",
                    document=origin.document, item=origin.item,
                ))
                continue
            origins[key] = origin
            objects.append(obj)
    return ManifestSet(objects=tuple(objects), errors=tuple(errors), files=tuple(files),
                       origins=MappingProxyType(origins))


def _discover(roots: Sequence[str]) -> Iterator[tuple[str, str]]:
    """``(kind, path)`` in read order: ``explicit`` (a path given, existing or not), ``found``
    (a manifest file in a given directory) or ``unlisted`` (a directory we cannot list)."""
    seen: set[str] = set()
    visited: set[str] = set()
    for root in roots:
        entries = _walk(root, visited) if os.path.isdir(root) else iter([("explicit", root)])
        for kind, path in entries:
            key = os.path.abspath(path)
            if key not in seen:  # a file given and also inside a given directory
                seen.add(key)
                yield kind, path


def _walk(directory: str, visited: set[str]) -> Iterator[tuple[str, str]]:
    real = os.path.realpath(directory)
    if real in visited:  # a symlink loop, or the same directory given twice
        return
    visited.add(real)
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError:
        yield "unlisted", directory
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        if is_dir:
            yield from _walk(entry.path, visited)
        elif entry.name.endswith(SUFFIXES):
            yield "found", entry.path


def _refresh(
    path: str, explicit: bool, namespace: str, previous: ManifestFile | None, tally: Tally,
) -> ManifestFile | None:
    """The record for ``path`` now; None for a found file that is gone."""
    now_ns = time.time_ns()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return _not_found(path) if explicit else None
    except OSError as exc:
        return _failed(previous, _unreadable(path, exc), None, None)
    if not stat.S_ISREG(st.st_mode):
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        return _failed(previous, ManifestError(path, "Unreadable", f"is {what}"), None, None)
    current = FileStat.of(st, now_ns)
    if (previous is not None and previous.stat is not None and previous.digest is not None
            and previous.stat.unchanged(current)):
        return previous
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return _not_found(path) if explicit else None
    except OSError as exc:
        return _failed(previous, _unreadable(path, exc), current, None)
    tally.reads += 1
    digest = hashlib.sha256(data).hexdigest()
    if previous is not None and previous.digest == digest:
        return previous if previous.stat == current else attrs.evolve(previous, stat=current)
    tally.parses += 1
    parsed = parse_manifest(path, data, namespace)
    if isinstance(parsed, ManifestError):
        return _failed(previous, parsed, current, digest)
    return ManifestFile(path=path, stat=current, digest=digest, served=digest,
                        objects=parsed.objects,
                        origins=parsed.origins, errors=parsed.errors)


def _failed(
    previous: ManifestFile | None, failure: ManifestError, current: FileStat | None,
    digest: str | None,
) -> ManifestFile:
    """A record that serves ``previous``'s objects, if any, and says why not newer ones."""
    if previous is None:
        return ManifestFile(path=failure.path, stat=current, digest=digest, failure=failure)
    if (same_error(previous.failure, failure) and previous.stat == current
            and previous.digest == digest):
        return previous
    return attrs.evolve(previous, stat=current, digest=digest, failure=failure)


def _not_found(path: str) -> ManifestFile:
    # A deleted file's objects go with it, unlike an unreadable file's.
    return ManifestFile(path=path, failure=ManifestError(path, "NotFound", "does not exist"))


def _unreadable(path: str, exc: OSError) -> ManifestError:
    return ManifestError(path, "Unreadable", f"cannot be read: {exc.strerror or exc}")
