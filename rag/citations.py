"""Checking an answer's [n] citations against the pages the model was shown."""
from __future__ import annotations

import re

_GROUP = re.compile(r"\[(\s*\d+(?:\s*[,;]\s*\d+)*\s*)\]")


def check(answer: str, valid: set[int]) -> tuple[str, list[int], list[int]]:
    """(answer without invalid citations, cited numbers, removed numbers), numbers sorted.

    check("Paid [1]; due [4] and [1, 3].", {1, 2, 3}) -> ("Paid [1]; due and [1, 3].", [1, 3], [4])
    check("Paid [1,1,1].", {1}) -> ("Paid [1].", [1], [])   (a number repeated in a group is kept once)
    """
    cited, removed = set(), set()

    def fix(m: re.Match) -> str:
        nums = [int(x) for x in re.findall(r"\d+", m.group(1))]
        keep = list(dict.fromkeys(n for n in nums if n in valid))
        cited.update(keep)
        removed.update(n for n in nums if n not in valid)
        return "[" + ", ".join(map(str, keep)) + "]" if keep else "\0"

    text = _GROUP.sub(fix, answer)
    text = re.sub(r"[ \t]*\0", "", text)  # drop an emptied citation with the space before it
    return text, sorted(cited), sorted(removed)
