"""Tables of README.md and docs/*.md generated from committed files, so that they can be regenerated and checked.

A generated block sits between two markers in a Markdown file; everything between them is this script's:

    <!-- generated: NAME -->
    ...written by the generator registered as NAME...
    <!-- /generated -->

    python docs/generate_tables.py           # rewrite every block (make docs)
    python docs/generate_tables.py --check   # exit 1 naming each stale block (tests/test_docs_tables.py runs it)
    python docs/generate_tables.py --list    # the generators and where their blocks are

The benchmark tables read the reference outputs in docs/bench/<benchmark>.json, which the benchmarks write with
``--out docs/bench/<benchmark>.json`` (``make bench-... BENCH_OUT=docs/bench``); a table shows only figures that
are in such a file, and says which command, commit, date, machine and load produced them. When the file is not
there the block says which command writes it.

Adding a table: in one of the table modules beside this script (tables_speed.py: serving, pipeline, scale;
tables_accuracy.py: evaluation, accuracy; tables_headlines.py: the README's headlines; tables_config.py: the
configuration keys), or a new one imported below, write a function ``(ctx: Context) -> str`` returning its
Markdown, register it with ``@generator("name", "what it shows")`` from table_registry.py, and put the markers
where it goes. ``ctx.bench(name)`` reads a benchmark output (or ends the block with the "not generated yet"
line); ``ctx.root`` is the repository for any other source (a schema, a config file). table_format.py holds the
number, table and provenance helpers.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from table_registry import GENERATORS, Context, MissingOutput, missing_text
# the table modules register their generators on import, in this order (the order of --list)
import tables_speed
import tables_accuracy
import tables_headlines
import tables_config
from tables_accuracy import accuracy_text

#: the modules whose generators are registered
TABLE_MODULES = (tables_speed, tables_accuracy, tables_headlines, tables_config)
__all__ = ["GENERATORS", "Context", "MarkerError", "accuracy_text", "find_blocks", "main", "placements", "regenerate",
           "render", "run"]

REPO = Path(__file__).resolve().parents[1]

START = re.compile(r"^<!-- generated: ([A-Za-z0-9_.-]+) -->[ \t]*$")
END = "<!-- /generated -->"


def render(name: str, ctx: Context) -> str:
    """The text of a block ``name`` (without its markers)."""
    try:
        text = GENERATORS[name].render(ctx)
    except MissingOutput as missing:
        text = missing_text(missing.benchmark)
    return text.strip("\n")


# ------------------------------------------------------------------------------------------------ blocks
class MarkerError(Exception):
    pass


@dataclass
class Block:
    name: str
    start: int  # index of the line after the start marker
    end: int    # index of the end-marker line
    line: int   # 1-based line number of the start marker


def find_blocks(text: str, where: str, warn=None) -> list[Block]:
    """The blocks of ``text`` whose generator is registered. A block of an unregistered name is left as it is
    (``warn`` gets a line for it: a table whose generator is still to come); a registered generator without a
    block is what tests/test_docs_tables.py catches, so a misspelt marker still fails the suite."""
    lines = text.split("\n")
    blocks, open_block = [], None
    for i, line in enumerate(lines):
        m = START.match(line)
        if m:
            if open_block:
                raise MarkerError(f"{where}:{i + 1}: block {m.group(1)!r} starts inside block "
                                  f"{open_block.name!r} (line {open_block.line}), which has no {END}")
            open_block = Block(m.group(1), i + 1, -1, i + 1)
        elif line.strip() == END:
            if not open_block:
                raise MarkerError(f"{where}:{i + 1}: {END} without a start marker")
            open_block.end = i
            if open_block.name in GENERATORS:
                blocks.append(open_block)
            elif warn:
                warn(f"{where}:{open_block.line}: no generator named {open_block.name!r} yet: block left as it is "
                     f"(registered: {', '.join(sorted(GENERATORS))})")
            open_block = None
    if open_block:
        raise MarkerError(f"{where}:{open_block.line}: block {open_block.name!r} has no {END}")
    return blocks


def regenerate(text: str, ctx: Context, where: str, warn=None) -> tuple[str, list[Block]]:
    """``text`` with every block rewritten, and the blocks whose text changed."""
    lines = text.split("\n")
    blocks = find_blocks(text, where, warn)
    stale, out, pos = [], [], 0
    for b in blocks:
        new = ["", *render(b.name, ctx).split("\n"), ""]
        if lines[b.start:b.end] != new:
            stale.append(b)
        out += lines[pos:b.start] + new
        pos = b.end
    out += lines[pos:]
    return "\n".join(out), stale


def documents(root: Path) -> list[Path]:
    """The Markdown files that may hold blocks: README.md and docs/*.md."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.exists()]


def run(root: Path, check: bool, warn=None) -> list[str]:
    """Rewrite (or with ``check`` only compare) every block under ``root``; return 'file:line: block' of each
    stale one. Every file is read and rendered before any is written, so a marker mistake changes nothing."""
    ctx, stale, rewritten = Context(root), [], {}
    for path in documents(root):
        where = path.relative_to(root).as_posix()
        new, changed = regenerate(path.read_text(), ctx, where, warn)
        stale += [f"{where}:{b.line}: {b.name}" for b in changed]
        if changed:
            rewritten[path] = new
    if not check:
        for path, new in rewritten.items():
            path.write_text(new)
    return stale


def placements(root: Path) -> dict[str, list[str]]:
    """Generator name -> 'file:line' of each of its blocks."""
    found: dict[str, list[str]] = {name: [] for name in GENERATORS}
    for path in documents(root):
        where = path.relative_to(root).as_posix()
        for b in find_blocks(path.read_text(), where):
            found[b.name].append(f"{where}:{b.line}")
    return found


# ------------------------------------------------------------------------------------------------ CLI
def main(argv: list[str] | None = None, root: Path = REPO) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each stale block")
    ap.add_argument("--list", action="store_true", help="the generators and where their blocks are")
    ap.add_argument("--root", type=Path, default=root, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    try:
        if a.list:
            for name, where in placements(a.root).items():
                print(f"{name}: {GENERATORS[name].description}\n    " + (", ".join(where) or "(no block)"))
            return 0
        stale = run(a.root, check=a.check, warn=lambda line: print(f"generate_tables: {line}", file=sys.stderr))
    except MarkerError as exc:
        print(f"generate_tables: {exc}", file=sys.stderr)
        return 2
    if a.check and stale:
        print("stale generated tables (run `make docs`):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    if not a.check:
        print("rewrote " + ", ".join(stale) if stale else "every generated table is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
