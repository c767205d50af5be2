"""The runnable examples of the docs: a fenced block right after a `<!-- runnable -->`
line. A `console` block is `$ command` lines (a trailing backslash or a heredoc continues
one; `$ #` lines are narration, not run), each followed by what it prints; a `python`
block is run whole, and its closing `# ` comment lines are what it prints. Output is
compared line by line where the page shows it: each shown line matches an actual one,
in order; `...` stands for anything; numbers match within a tolerance (training is not
bit-for-bit the same everywhere)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "<!-- runnable -->"
NUMBER = r"(?<![\w.])-?\d+\.?\d*(?:[eE][-+]?\d+)?(?![\w])"
REL, ABS = 1e-2, 2e-2  # probabilities of a model trained elsewhere differ by ~0.01


@dataclass
class Example:
    """One command (or python program) of a page and the lines it is shown printing."""

    page: str
    line: int
    language: str
    code: str
    shown: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def examples(page: Path, root: Path) -> list[Example]:
    """Every runnable example of `page` (its path shown relative to `root`)."""
    lines = page.read_text().splitlines()
    found: list[Example] = []
    for index, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        fence = lines[index + 1].strip()
        assert fence.startswith("```"), f"{page}:{index + 2}: {MARKER} must precede a fence"
        language = fence[3:].strip()
        end = next(i for i in range(index + 2, len(lines)) if lines[i].strip() == "```")
        body, first = lines[index + 2 : end], index + 3
        name = str(page.relative_to(root))
        if language == "python":
            code = [b for b in body]
            shown: list[str] = []
            while code and code[-1].startswith("# "):
                shown.insert(0, code.pop()[2:])
            found.append(Example(name, first, "python", "\n".join(code), shown))
        else:
            assert language == "console", f"{page}:{index + 2}: runnable blocks: console, python"
            found += _console(body, name, first)
    return found


def _console(body: list[str], page: str, first: int) -> list[Example]:
    found: list[Example] = []
    i = 0
    while i < len(body):
        line = body[i]
        if not line.startswith("$ "):
            if found:
                found[-1].shown.append(line)
            i += 1
            continue
        start, command = i, [line[2:]]
        heredoc = re.search(r"<<-?'?(\w+)'?", line)
        while command[-1].endswith("\\") or heredoc:
            i += 1
            command.append(body[i])
            if heredoc and body[i].strip() == heredoc.group(1):
                heredoc = None
        i += 1
        if command[0].startswith("#"):
            found.append(Example(page, first + start, "narration", ""))  # output not compared
            continue
        found.append(Example(page, first + start, "console", "\n".join(command)))
    return [e for e in found if e.language != "narration"]


def mismatch(shown: list[str], actual: str) -> str | None:
    """None when every shown line matches an actual line, in order; else what differs."""
    lines = [line.rstrip("\r ") for line in actual.splitlines()]
    position = 0
    for expected in shown:
        expected = expected.strip()
        if not expected:
            continue
        while position < len(lines) and not _line_matches(expected, lines[position]):
            position += 1
        if position == len(lines):
            return f"no line matches {expected!r} (in order) in:\n{actual}"
        position += 1
    return None


def _line_matches(expected: str, actual: str) -> bool:
    parts = [p for p in re.split(f"({NUMBER}|\\s*\\.\\.\\.\\s*)", expected) if p]
    wild = [p.strip() == "..." for p in parts]
    numeric = [
        not w and re.fullmatch(NUMBER, p) is not None for p, w in zip(parts, wild, strict=True)
    ]
    pattern = "".join(
        "(.*?)" if w else f"({NUMBER})" if n else re.escape(p)
        for p, w, n in zip(parts, wild, numeric, strict=True)
    )
    match = re.fullmatch(pattern, actual.strip(), re.DOTALL)
    if match is None:
        return False
    captured = iter(match.groups())
    pairs = [(p, next(captured)) for p, w, n in zip(parts, wild, numeric, strict=True) if w or n]
    return all(math.isclose(float(w), float(g), rel_tol=REL, abs_tol=ABS)
               for w, g in pairs if w.strip() != "...")  # fmt: skip
