"""Where objects come from: YAML/JSON manifest files (loaded, reloaded, watched).

The only part of the core that touches the filesystem. ``load_manifests`` reads once and
returns a ``ManifestSet``; ``FileSource`` keeps a per-file cache, publishes to a ``Store``
or a callback, and reloads on change from a watch thread.
"""

from meshclient.sources._errors import ManifestConfigError as ManifestConfigError
from meshclient.sources._errors import ManifestError as ManifestError
from meshclient.sources._errors import ManifestReason as ManifestReason
from meshclient.sources._errors import Origin as Origin
from meshclient.sources._files import DEFAULT_DEBOUNCE as DEFAULT_DEBOUNCE
from meshclient.sources._files import DEFAULT_STOP_TIMEOUT as DEFAULT_STOP_TIMEOUT
from meshclient.sources._files import Changes as Changes
from meshclient.sources._files import FileSource as FileSource
from meshclient.sources._files import FileSourceStatus as FileSourceStatus
from meshclient.sources._manifests import SUFFIXES as SUFFIXES
from meshclient.sources._manifests import FileStat as FileStat
from meshclient.sources._manifests import ManifestFile as ManifestFile
from meshclient.sources._manifests import ManifestSet as ManifestSet
from meshclient.sources._manifests import load_manifests as load_manifests
from meshclient.sources._yaml import LOADER as LOADER

__all__ = [
    "DEFAULT_DEBOUNCE",
    "DEFAULT_STOP_TIMEOUT",
    "LOADER",
    "SUFFIXES",
    "Changes",
    "FileSource",
    "FileSourceStatus",
    "FileStat",
    "ManifestConfigError",
    "ManifestError",
    "ManifestFile",
    "ManifestReason",
    "ManifestSet",
    "Origin",
    "load_manifests",
]
