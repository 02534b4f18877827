"""The checkpoint ``torch.save`` wrote, read without torch: scoring and serving never import it (2.4 CPU-s).

``torch.save`` writes a zip: ``<name>/data.pkl`` (a pickle of the checkpoint dict whose tensors are
``torch._utils._rebuild_tensor_v2`` calls over persistent storages) and ``<name>/data/<key>`` (each storage's
raw little-endian bytes). :func:`read_checkpoint` unpickles that dict with three stand-ins for the only globals
a plain state-dict checkpoint holds (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``torch.FloatStorage``), each tensor becoming a float32 numpy array over its storage's bytes. Nothing is
imported or called besides these. Anything else (another global, a storage type, a view, a compressed or
missing record) raises :class:`Unsupported`: the caller then reads the bytes with ``torch.load(weights_only=True)``,
which reads what torch can and names what it refuses, as before.
"""
from __future__ import annotations

import collections
import io
import pickle
import sys
import zipfile

import numpy as np


class Unsupported(Exception):
    """Not the plain checkpoint this reader knows: let ``torch.load`` read it (or name the problem)."""


class _FloatStorage:
    """The stand-in for ``torch.FloatStorage``: a marker only (no attributes a pickle could set)."""

    __slots__ = ()


_FLOAT32 = _FloatStorage()


def _rebuild_tensor(storage, offset, size, stride, requires_grad, hooks, metadata=None):
    """``torch._utils._rebuild_tensor_v2`` for a C-contiguous float32 tensor without hooks: a numpy view."""
    ints = lambda values: isinstance(values, tuple) and all(type(v) is int and v >= 0 for v in values)  # noqa: E731
    if not (isinstance(storage, np.ndarray) and type(offset) is int and offset >= 0 and ints(size) and ints(stride)
            and len(size) == len(stride) and type(requires_grad) is bool and isinstance(hooks, dict) and not hooks
            and not metadata):
        raise Unsupported("a tensor this reader does not know")
    n = int(np.prod(size, dtype=np.int64))
    contiguous = tuple(int(np.prod(size[i + 1:], dtype=np.int64)) for i in range(len(size)))
    if (n > 1 and stride != contiguous) or offset + n > storage.size:
        raise Unsupported("a tensor view")
    return storage[offset:offset + n].reshape(size)


class _CheckpointUnpickler(pickle.Unpickler):
    GLOBALS = {("collections", "OrderedDict"): collections.OrderedDict,
               ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
               ("torch", "FloatStorage"): _FLOAT32}

    def __init__(self, data: bytes, storage):
        super().__init__(io.BytesIO(data))
        self._storage = storage

    def find_class(self, module, name):
        try:
            return self.GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise Unsupported(f"the global {module}.{name}") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and pid[1] is _FLOAT32
                and isinstance(pid[2], str) and type(pid[4]) is int and pid[4] >= 0):
            raise Unsupported("a storage this reader does not know")
        return self._storage(pid[2], pid[4])


def read_checkpoint(data: bytes):
    """The object ``torch.save`` pickled into ``data``, tensors as read-only float32 numpy arrays."""
    if sys.byteorder != "little":
        raise Unsupported("a big-endian machine")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        records = {info.filename: info for info in archive.infolist()}
        pickles = [name for name in records if name.count("/") == 1 and name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise Unsupported("no single data.pkl")
        prefix = pickles[0][:-len("data.pkl")]

        def record(name: str) -> bytes:
            info = records.get(prefix + name)
            if info is None or info.compress_type != zipfile.ZIP_STORED:
                raise Unsupported(f"record {name} missing or compressed")
            return archive.read(info)

        if record("byteorder") != b"little":
            raise Unsupported("not little-endian")
        storages: dict[str, np.ndarray] = {}

        def storage(key: str, numel: int) -> np.ndarray:
            if key not in storages:
                raw = record(f"data/{key}")
                if len(raw) != 4 * numel:
                    raise Unsupported(f"storage {key} has {len(raw)} bytes, not {numel} float32")
                storages[key] = np.frombuffer(raw, dtype="<f4")
            elif storages[key].size != numel:
                raise Unsupported(f"storage {key} with two sizes")
            return storages[key]

        unpickler = _CheckpointUnpickler(record("data.pkl"), storage)
        return unpickler.load()
    except Unsupported:
        raise
    except Exception as exc:  # zipfile's and pickle's many failure types: torch.load names the problem
        raise Unsupported(f"{type(exc).__name__}: {exc}") from None
