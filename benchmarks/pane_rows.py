"""Where a tool's terminal bytes went: what `idle_cost.py --keep DIR` kept, split by screen row.

Textual (and curses) start every piece they draw with a cursor move, `ESC [ row ; col H`;
the bytes from one move to the next went to that row, starting at that column. For each
row this prints the bytes, the number of moves, and the columns that took the most, which
names the widget (a pane's left edge, a scrollbar's column). With `--screen WxH` it also
prints the last screen the bytes drew (text only), to see which widget sits where.

    python benchmarks/pane_rows.py /tmp/panes/fleetdeck-200x60-1.bytes [--screen 200x60]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

MOVE = re.compile(rb"\x1b\[(\d+);(\d+)H")
TOKEN = re.compile(r"\x1b\[(\d+);(\d+)H|\x1b\[[0-9;?]*[A-Za-z]|\x1b[^\[]|[\r\n]|[^\x1b\r\n]")


def by_row(data: bytes) -> tuple[Counter[int], Counter[int], Counter[tuple[int, int]]]:
    """Bytes per row, moves per row, and bytes per (row, column) a move started at."""
    rows: Counter[int] = Counter()
    moves: Counter[int] = Counter()
    starts: Counter[tuple[int, int]] = Counter()
    found = list(MOVE.finditer(data))
    for i, move in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(data)
        y, x = int(move.group(1)), int(move.group(2))
        rows[y] += end - move.start()
        moves[y] += 1
        starts[(y, x)] += end - move.start()
    return rows, moves, starts


def last_screen(data: bytes, width: int, height: int) -> list[str]:
    """The text the bytes leave on a `width` x `height` screen (colours and modes ignored)."""
    screen = [[" "] * width for _ in range(height)]
    y = x = 0
    for token in TOKEN.finditer(data.decode(errors="replace")):
        text = token.group(0)
        if token.group(1):
            y, x = int(token.group(1)) - 1, int(token.group(2)) - 1
        elif not (text.startswith("\x1b") or text in "\r\n"):
            if 0 <= y < height and 0 <= x < width:
                screen[y][x] = text
            x += 1
    return ["".join(row).rstrip() for row in screen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bytes", type=Path, help="a file kept by idle_cost.py --keep")
    parser.add_argument("--screen", metavar="WxH", help="also print the last screen drawn")
    args = parser.parse_args()
    data = args.bytes.read_bytes()
    rows, moves, starts = by_row(data)
    print(f"{len(data):,} bytes, {sum(moves.values()):,} cursor moves")
    for y in sorted(rows):
        top = sorted(((b, x) for (row, x), b in starts.items() if row == y), reverse=True)[:4]
        columns = ", ".join(f"col {x}: {b:,}" for b, x in top)
        print(f"row {y:3d} {rows[y]:9,d} bytes {moves[y]:5d} moves   {columns}")
    if args.screen:
        width, height = (int(n) for n in args.screen.lower().split("x"))
        for y, line in enumerate(last_screen(data, width, height), 1):
            print(f"{y:3d} {line}")


if __name__ == "__main__":
    main()
