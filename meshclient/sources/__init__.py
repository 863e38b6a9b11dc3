"""Where objects come from: YAML/JSON manifest files (loaded, reloaded, watched), and the
Kubernetes API (list and watch, through ``Mesh.from_kubernetes``; its I/O half,
``_kube_client``, is imported only then, and needs ``meshclient[kubernetes]``).

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
from meshclient.sources._jwks import DEFAULT_JWKS_MAX_AGE as DEFAULT_JWKS_MAX_AGE
from meshclient.sources._jwks import DEFAULT_JWKS_MIN_REFRESH as DEFAULT_JWKS_MIN_REFRESH
from meshclient.sources._jwks import JwksKeys as JwksKeys
from meshclient.sources._kube_kinds import DEFAULT_KINDS as DEFAULT_KINDS
from meshclient.sources._kube_kinds import KindSpec as KindSpec
from meshclient.sources._kube_kinds import MissingPermission as MissingPermission
from meshclient.sources._kube_options import DEFAULT_WATCH_TIMEOUT as DEFAULT_WATCH_TIMEOUT
from meshclient.sources._kube_options import KubeOptions as KubeOptions
from meshclient.sources._kube_options import SyncStatus as SyncStatus
from meshclient.sources._kube_watch import Backoff as Backoff
from meshclient.sources._kube_watch import KindStatus as KindStatus
from meshclient.sources._kube_watch import Phase as Phase
from meshclient.sources._kube_watch import Reflector as Reflector
from meshclient.sources._kube_watch import Signal as Signal
from meshclient.sources._kubernetes import DEFAULT_SYNC_TIMEOUT as DEFAULT_SYNC_TIMEOUT
from meshclient.sources._kubernetes import KubernetesRunner as KubernetesRunner
from meshclient.sources._kubernetes import Whereabouts as Whereabouts
from meshclient.sources._kubernetes import whereabouts as whereabouts
from meshclient.sources._manifests import SUFFIXES as SUFFIXES
from meshclient.sources._manifests import FileStat as FileStat
from meshclient.sources._manifests import ManifestFile as ManifestFile
from meshclient.sources._manifests import ManifestSet as ManifestSet
from meshclient.sources._manifests import load_manifests as load_manifests
from meshclient.sources._token import TokenFile as TokenFile
from meshclient.sources._yaml import LOADER as LOADER

__all__ = [
    "DEFAULT_DEBOUNCE",
    "DEFAULT_JWKS_MAX_AGE",
    "DEFAULT_JWKS_MIN_REFRESH",
    "DEFAULT_KINDS",
    "DEFAULT_STOP_TIMEOUT",
    "DEFAULT_SYNC_TIMEOUT",
    "DEFAULT_WATCH_TIMEOUT",
    "LOADER",
    "SUFFIXES",
    "Backoff",
    "Changes",
    "FileSource",
    "FileSourceStatus",
    "FileStat",
    "JwksKeys",
    "KindSpec",
    "KindStatus",
    "KubeOptions",
    "KubernetesRunner",
    "ManifestConfigError",
    "ManifestError",
    "ManifestFile",
    "ManifestReason",
    "ManifestSet",
    "MissingPermission",
    "Origin",
    "Phase",
    "Reflector",
    "Signal",
    "SyncStatus",
    "TokenFile",
    "Whereabouts",
    "load_manifests",
    "whereabouts",
]

