"""List the sentences of the book's pages that state what a run did in static prose.

What a run did (which run ended higher, what diverged, what the curve did) must come from the run:
glued (``{glue:text}``) or stated by ``idlmam.notebook.finding``. This lists every sentence of a
page's Markdown that uses an outcome word (ended above, beat, diverged, won, ...) and holds no
glued value; each one must be rewritten from the run, or be a fact about papers, methods or
definitions, in which case it stays and is judged by a reader, not by this tool.

    python tools/prose_outcomes.py [book/02_schedules.py ...]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from prose_digits import markdown_cells

ROOT = Path(__file__).resolve().parents[1]
GLUE = re.compile(r"\{glue:[a-z]+\}`[^`]*`")
CITE = re.compile(r"\{cite:[a-z]+\}`[^`]*`")  # a sentence that cites reports a paper
SKIP = [
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"^\s*(`{3,}|:{3,}|:[a-z-]+:).*$", re.M),  # fences and options; bodies stay
]
OUTCOME = re.compile(
    r"\b(beat|beats|won|wins|outperform\w*|ended (?:above|below|higher|lower|at)|ends (?:above"
    r"|below|higher|lower|at)|diverged|collapsed|did (?:better|worse)|came out ahead"
    r"|(?:higher|lower|better|worse|faster|slower) than|(?:fell|rose|dropped|climbed) (?:by|to|from)"
    r"|reached|failed|at chance|helped|hurt|gained|lost|stalled|the (?:best|worst) (?:run|schedule"
    r"|optimizer|sampler|pruner))\b",
    re.I,
)
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(*`$])")


def outcome_sentences(path: Path) -> list[tuple[int, str]]:
    """(cell number, sentence) for every static sentence of ``path`` that states an outcome."""
    found = []
    for number, text in markdown_cells(path):
        for pattern in SKIP:
            text = pattern.sub(" ", text)
        for paragraph in re.split(r"\n\s*\n", text):
            flat = " ".join(line.strip().lstrip("-*> ") for line in paragraph.splitlines())
            for sentence in SENTENCE.split(flat):
                if GLUE.search(sentence) or CITE.search(sentence):
                    continue  # the numbers come from the run, or the sentence reports a paper
                if OUTCOME.search(sentence):
                    found.append((number, sentence.strip()))
    return found


def main(paths: list[str]) -> int:
    files = [Path(p).resolve() for p in paths] or sorted((ROOT / "book").rglob("*.py"))
    count = 0
    for path in files:
        for number, sentence in outcome_sentences(path):
            print(f"{path.relative_to(ROOT)} cell {number}: {sentence}")
            count += 1
    return count


if __name__ == "__main__":
    main(sys.argv[1:])
