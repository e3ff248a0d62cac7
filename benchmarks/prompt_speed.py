"""How fast the model reads a prompt and writes an answer on this machine: the two rates
every latency figure is made of.

    .venv/bin/python benchmarks/prompt_speed.py [--model qwen|qwen1.5b|PATH] [--repeats 3]
        [--flash-attn] [--json]

Reading: the KV cache is cleared, then 100, 200 and 400 tokens of a seed article are
evaluated at once (what a question's passages cost after the cached fixed prefix).
Writing: 32 tokens generated greedily after them. Same threads and batch as the product
(RAG_N_THREADS, RAG_N_BATCH). Run it alone: a second llama.cpp process on the same two
cores slows both many times over.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.stats import machine
from rag.models import resolve
from rag.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
LENGTHS = (100, 200, 400)
WRITE = 32


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--flash-attn", action="store_true", help="llama.cpp's flash attention (not the default)"
    )
    args = parser.parse_args(argv)
    from llama_cpp import Llama

    settings = load_settings()
    path = resolve(args.model, settings.model_cache)
    llm = Llama(
        model_path=str(path),
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        n_threads_batch=settings.n_threads,
        n_batch=settings.n_batch,
        flash_attn=args.flash_attn,
        verbose=False,
    )
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "seeds").iterdir()))
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False)
    figures: dict[str, object] = {"machine": machine(), "model": path.name}
    for n in LENGTHS:
        rates = []
        for _ in range(args.repeats):
            llm.reset()  # type: ignore[no-untyped-call]
            started = time.perf_counter()
            llm.eval(tokens[:n])
            rates.append(n / (time.perf_counter() - started))
        figures[f"read_{n}_tokens_per_s"] = round(statistics.median(rates), 1)
    rates = []
    for _ in range(args.repeats):
        llm.reset()  # type: ignore[no-untyped-call]
        llm.eval(tokens[:200])
        started = time.perf_counter()
        for _ in range(WRITE):
            llm.eval([llm.sample(temp=0.0)])
        rates.append(WRITE / (time.perf_counter() - started))
    figures["write_tokens_per_s"] = round(statistics.median(rates), 1)
    figures["threads"] = settings.n_threads
    figures["flash_attn"] = args.flash_attn
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:24s} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
