"""A small on-disk cache for expensive arrays (template libraries), keyed by content.

The key is the SHA-256 of a text (e.g. a phase's CIF text), a canonical JSON of the parameters and the stemgrains
version, so a changed structure, parameter or software version never returns stale arrays. Each entry is one
``<key>.npz`` file in the cache folder, written to a temporary file in the same folder and moved into place with
``os.replace`` (atomic: readers see the old file, the new file, or none). Unreadable, truncated or mismatched
files are treated as a miss (the caller rebuilds and overwrites them); the cache never raises on a bad file.

Cache folder: the ``cache_dir`` argument, else the environment variable ``STEMGRAINS_CACHE``, else
``~/.cache/stemgrains``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import ParameterError

__all__ = ["cache_key", "cache_path", "default_cache_dir", "load_cached", "save_cached"]

_log = logging.getLogger(__name__)

#: Name of the array stored in every entry that repeats its key (guards against renamed or copied files).
_KEY_FIELD = "__cache_key__"
_KEY_RE = re.compile(r"^[0-9a-f]{64}$")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def cache_key(text: str, params: dict[str, Any]) -> str:
    """SHA-256 hex digest of ``text``, the parameters (canonical JSON, sorted keys) and the stemgrains version.

    Parameters
    ----------
    text
        Content the cached arrays derive from (e.g. CIF text).
    params
        JSON-serialisable parameters (numpy scalars and arrays are accepted). Include the versions of other
        software the arrays depend on if they matter (e.g. orix, whose S2 mesh defines the beam directions).
    """
    if not isinstance(text, str):
        raise ParameterError(f"cache_key text must be a str, got {type(text).__name__}")
    if not isinstance(params, dict):
        raise ParameterError(f"cache_key params must be a dict, got {type(params).__name__}")
    try:
        blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=True)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"cache_key params must be JSON serialisable: {err}") from None
    h = hashlib.sha256()
    for part in (text, blob, __version__):
        data = part.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))  # length-prefixed: no ambiguity between the parts
        h.update(data)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$STEMGRAINS_CACHE`` if set and non-empty, else ``~/.cache/stemgrains``."""
    env = os.environ.get("STEMGRAINS_CACHE", "")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "stemgrains"


def cache_path(key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the ``.npz`` file of ``key`` (a 64-character lower-case hex digest from :func:`cache_key`)."""
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise ParameterError(f"cache key must be a 64-character hex SHA-256 digest, got {key!r}")
    folder = default_cache_dir() if cache_dir is None else Path(cache_dir).expanduser()
    return folder / f"{key}.npz"


def load_cached(key: str, cache_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray] | None:
    """Arrays stored under ``key``, or None when there is no entry or it cannot be read.

    A corrupt, truncated or mismatched entry is deleted (best effort) and None returned, so the caller rebuilds it.
    """
    path = cache_path(key, cache_dir)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:  # own handle: closed on any error
            arrays = {name: np.array(npz[name]) for name in npz.files}
        stored = arrays.pop(_KEY_FIELD, None)
        if stored is None or str(stored) != key:
            raise ValueError("entry does not carry its key")
    except Exception as err:  # noqa: BLE001 -- any unreadable entry is a cache miss, never an error
        _log.info("ignoring unreadable cache entry %s (%s: %s)", path, type(err).__name__, err)
        try:
            path.unlink()
        except OSError:
            pass
        return None
    return arrays


def save_cached(key: str, arrays: dict[str, np.ndarray], cache_dir: str | os.PathLike | None = None) -> bool:
    """Store ``arrays`` under ``key`` atomically (temporary file in the same folder + ``os.replace``).

    Parameters
    ----------
    key
        From :func:`cache_key`.
    arrays
        Name → numeric/bool/str array (object arrays are refused: entries are loaded without pickle).
    cache_dir
        Folder (created if missing); default :func:`default_cache_dir`.

    Returns
    -------
    bool
        True if written; False if the folder cannot be written (the cache is best effort: a failed write only
        means the next call rebuilds).
    """
    path = cache_path(key, cache_dir)
    if not isinstance(arrays, dict):
        raise ParameterError(f"arrays must be a dict of name -> numpy array, got {type(arrays).__name__}")
    clean: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name.isidentifier() or name == _KEY_FIELD:
            raise ParameterError(f"cache array names must be Python identifiers (not {_KEY_FIELD}), got {name!r}")
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise ParameterError(f"cache array {name!r} has dtype object; only numeric, bool and str arrays are stored")
        clean[name] = arr
    clean[_KEY_FIELD] = np.array(key)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".npz.tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **clean)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as err:
        _log.warning("could not write cache entry %s (%s)", path, err)
        return False
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
    return True
