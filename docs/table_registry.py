"""The registry of docs/generate_tables.py: what a table generator is, where each is registered (``GENERATORS``,
by marker name), and the context it renders from (``Context``: the repository and its committed benchmark
outputs). Table modules register with ``@generator`` from here, never from generate_tables (run as a script it
is ``__main__``, and a second copy of its registry would be empty)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

#: the committed reference outputs the benchmark tables are generated from
BENCH_DIR = Path("docs") / "bench"
#: the command that writes each benchmark's reference output (Makefile targets; BENCH_OUT picks the folder)
BENCH_COMMANDS = {
    "bench_pipeline": "make bench BENCH_OUT=docs/bench",
    "bench_serve": "make bench-serve BENCH_OUT=docs/bench",
    "bench_scale": "make bench-scale BENCH_OUT=docs/bench",
    "bench_end_to_end": "python bench/bench_end_to_end.py --out docs/bench/bench_end_to_end.json",
    "bench_scale_scoring": ("python bench/bench_scale.py --users 1000000 10000000 --skip-pipeline --fit-users 0 "
                            "--out docs/bench/bench_scale_scoring.json"),
    "bench_eval": "make bench-eval BENCH_OUT=docs/bench",
    "bench_eval_arms": ("python bench/bench_eval_arms.py --splits 20 --train-n 10000 --bayes-iter 1000 "
                        "--out docs/bench/bench_eval_arms.json"),
    "bench_accuracy": "make bench-accuracy BENCH_OUT=docs/bench",
    "bench_accuracy_shape": ("python bench/bench_accuracy.py --suite all --sizes 3000 --replications 2 --seed 303 "
                             "--bayes-models stan stan_auto --no-surrogate --bcf --out docs/bench/bench_accuracy_shape.json"),
}

@dataclass(frozen=True)
class Generator:
    name: str
    description: str
    render: Callable[["Context"], str]


#: every table this script can write, by marker name
GENERATORS: dict[str, Generator] = {}


def generator(name: str, description: str):
    """Register ``fn(ctx) -> markdown`` as the generator of the blocks marked ``name``."""
    def register(fn):
        if name in GENERATORS:
            raise ValueError(f"generator {name!r} registered twice")
        GENERATORS[name] = Generator(name, description, fn)
        return fn
    return register


class MissingOutput(Exception):
    """A benchmark's reference output is not committed: the block says how to write it instead."""

    def __init__(self, benchmark: str):
        super().__init__(benchmark)
        self.benchmark = benchmark


@dataclass
class Context:
    root: Path

    def bench_path(self, benchmark: str) -> Path:
        return self.root / BENCH_DIR / f"{benchmark}.json"

    def bench(self, benchmark: str) -> dict:
        """The committed output of ``benchmark`` (docs/bench/<benchmark>.json); MissingOutput when absent."""
        path = self.bench_path(benchmark)
        if not path.exists():
            raise MissingOutput(benchmark)
        return json.loads(path.read_text())

    def bench_or_none(self, benchmark: str) -> dict | None:
        try:
            return self.bench(benchmark)
        except MissingOutput:
            return None


def missing_text(benchmark: str) -> str:
    path = (BENCH_DIR / f"{benchmark}.json").as_posix()
    return (f"_Not generated yet: no committed output. `{BENCH_COMMANDS.get(benchmark, benchmark)}` writes "
            f"`{path}`, then `make docs` fills this table._")
