"""One input-validation layer: every command and study checks what a user hands it through here.

Each check raises :class:`~sciprune.errors.InputError` with one line: what was wrong, the value
received, what is expected and, where there is one, what to do. The checks:

* **paths** (:func:`input_file`, :func:`input_dir`, :func:`output_dir`): the empty string, a path
  under ``/proc`` / ``/sys`` / ``/dev``, a path below a regular file, a directory where a file is
  expected (and the reverse), a missing or unreadable file;
* **text** (:func:`read_text`): bounded size, UTF-8 (the offending byte offset is named);
* **YAML** (:func:`load_yaml`): duplicate keys refused, aliases bounded (a "billion laughs" document
  expands to at most :data:`MAX_YAML_VALUES` values), size bounded, ``1e-3`` read as a number;
* **strict config types** (:func:`strict_types`, :func:`finite_floats`, :func:`seed`, :func:`workers`):
  no ``true`` for a number, no ``1e29`` for an integer, no quoted ``"5"`` for a number, no ``1`` for a
  true/false value, seeds in ``[0, 2**63)``, workers in ``[1, 1024]``, no ``inf`` / ``nan`` where a finite number is expected, no empty text (a
  field opts out with ``json_schema_extra={"allow_inf": True}`` / ``{"allow_empty": True}``);
* **sizes** (:func:`memory`, :func:`peak`, :func:`parse_bytes`): a run whose estimated peak memory
  exceeds the limit (the machine's memory, or a config's ``memory_limit``) is refused with the estimate
  named;
* **addresses** (:func:`scheduler_address`);
* **names** (:func:`closest`): an unknown name lists the valid ones with a closest-match suggestion;
* **foreign files** (:func:`reading`, :func:`safetensors_header`): any exception raised while parsing
  a user's file becomes one InputError line;
* **special files** (:mod:`.special`): what a path is (directory, FIFO, device, socket), from ``stat``
  alone, so nothing is opened to find out and nothing waits on a FIFO;
* **HDF5** (:mod:`.hdf5`): signature, container, a dataset's kind / rank / width / dtype / storage and
  typed attributes, all before any data is read;
* **arrays** (:mod:`.arrays`): ``.npz`` / ``.npy`` / ``.csv`` tables (zip CRCs, ``.npy`` headers parsed
  by hand so no pickle is ever loaded, UTF-8, real numbers within float32's range).

One module a concept (:mod:`.paths`, :mod:`.special`, :mod:`.text`, :mod:`.strict`, :mod:`.memory`,
:mod:`.addresses`, :mod:`.names`, :mod:`.foreign`, :mod:`.hdf5`, :mod:`.arrays`); this package
re-exports the public names of the light ones, so callers import from ``sciprune.validate``
(:mod:`.hdf5` and :mod:`.arrays` are imported where they are used: h5py is not needed elsewhere).
"""

from __future__ import annotations

from sciprune.validate.addresses import scheduler_address
from sciprune.validate.foreign import reading, safetensors_header
from sciprune.validate.memory import format_bytes, memory, mlp_params, parse_bytes, peak, physical_memory
from sciprune.validate.names import closest
from sciprune.validate.paths import SYSTEM_DIRS, input_dir, input_file, output_dir, output_file
from sciprune.validate.strict import SEED_LIMIT, finite_floats, seed, strict_types, workers
from sciprune.validate.text import MAX_TEXT_BYTES, MAX_YAML_VALUES, load_yaml, parse_yaml_value, read_text

__all__ = [
    "MAX_TEXT_BYTES", "MAX_YAML_VALUES", "SEED_LIMIT", "SYSTEM_DIRS", "closest", "finite_floats", "format_bytes",
    "input_dir", "input_file", "load_yaml", "memory", "mlp_params", "output_dir", "output_file", "parse_bytes",
    "parse_yaml_value", "peak", "physical_memory", "read_text", "reading", "safetensors_header", "scheduler_address",
    "seed", "strict_types", "workers",
]
