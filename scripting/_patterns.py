"""The worst case of a Lua pattern, for the sandbox's pattern guard.

Lua's matcher backtracks in C, where no instruction hook fires, so a script could spend
minutes in one ``string.find``. Before each match the sandbox bounds its cost from the
pattern's *weight*: the number ``q`` of repetition items (``*``, ``+``, ``-``, ``%b``) that
can give characters back to what follows them, and the number ``h`` of such ``?`` items.
Matching a subject of ``n`` bytes costs at most about ``(n+1)^q * 2^h`` steps per start
position, and an unanchored pattern tries ``n+1`` of them.

A repetition gives nothing back, so it does not count, when it is the last item (what is
left cannot fail, unless a ``$`` follows) or when the item after it is a single character
class it cannot match (greedy or lazy, it can only stop at that class). The bound is
conservative: it is meant to stop exponential and long polynomial backtracking, not to
predict run time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

_CLASSES: dict[int, Callable[[int], bool]] = {
    ord("a"): lambda c: chr(c).isascii() and chr(c).isalpha(),
    ord("c"): lambda c: c < 32 or c == 127,
    ord("d"): lambda c: 48 <= c <= 57,
    ord("g"): lambda c: 33 <= c <= 126,
    ord("l"): lambda c: 97 <= c <= 122,
    ord("p"): lambda c: 33 <= c <= 126 and not chr(c).isalnum(),
    ord("s"): lambda c: c in (9, 10, 11, 12, 13, 32),
    ord("u"): lambda c: 65 <= c <= 90,
    ord("w"): lambda c: chr(c).isascii() and chr(c).isalnum(),
    ord("x"): lambda c: chr(c) in "0123456789abcdefABCDEF",
}
_ALL = frozenset(range(256))


def _escape_set(code: int) -> frozenset[int]:
    test = _CLASSES.get(code | 0x20)
    if test is None:
        return frozenset({code})  # an escaped literal: %. %% %(
    members = frozenset(c for c in range(256) if test(c))
    return _ALL - members if 65 <= code <= 90 else members


def _bracket(pattern: bytes, i: int) -> tuple[frozenset[int], int]:
    """The set of ``[...]`` starting at ``pattern[i]``, and the index after it."""
    i += 1
    negate = i < len(pattern) and pattern[i] == ord("^")
    if negate:
        i += 1
    members: set[int] = set()
    first = True
    while i < len(pattern) and (first or pattern[i] != ord("]")):
        first = False
        c = pattern[i]
        if c == ord("%") and i + 1 < len(pattern):
            members |= _escape_set(pattern[i + 1])
            i += 2
        elif i + 2 < len(pattern) and pattern[i + 1] == ord("-") and pattern[i + 2] != ord("]"):
            members |= set(range(c, pattern[i + 2] + 1))
            i += 3
        else:
            members.add(c)
            i += 1
    chosen = frozenset(members)
    return (_ALL - chosen if negate else chosen), i + 1


def _items(pattern: bytes) -> tuple[list[tuple[str, frozenset[int] | None, int]], bool]:
    """The pattern's items as (kind, character set, quantifier), and whether it is anchored."""
    anchored = pattern.startswith(b"^")
    i = 1 if anchored else 0
    items: list[tuple[str, frozenset[int] | None, int]] = []
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c in b"()":
            i += 1
            continue  # captures match nothing themselves
        if c == ord("$") and i == n - 1:
            items.append(("end", None, 0))
            break
        chars: frozenset[int] | None
        if c == ord("%") and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == ord("b"):
                items.append(("balance", None, ord("*")))
                i += 4
                continue
            if nxt == ord("f"):
                _, i = _bracket(pattern, i + 2) if i + 2 < n else (None, n)
                continue  # a frontier matches no character
            if 48 <= nxt <= 57:
                items.append(("capture", None, 0))
                i += 2
                continue
            chars, i = _escape_set(nxt), i + 2
        elif c == ord("["):
            chars, i = _bracket(pattern, i)
        elif c == ord("."):
            chars, i = _ALL, i + 1
        else:
            chars, i = frozenset({c}), i + 1
        quantifier = pattern[i] if i < n and pattern[i] in b"*+-?" else 0
        items.append(("single", chars, quantifier))
        i += 1 if quantifier else 0
    return items, anchored


@functools.lru_cache(maxsize=1024)
def pattern_weight(pattern: bytes) -> tuple[int, int, bool]:
    """``(q, h, anchored)`` of a Lua pattern (see the module docstring)."""
    items, anchored = _items(pattern)
    repeats = halves = 0
    for index, (kind, chars, quantifier) in enumerate(items):
        if not quantifier:
            continue
        rest = items[index + 1 :]
        if not rest:
            continue  # the last item: whatever it leaves, the match succeeds
        following = rest[0]
        if (
            kind == "single"
            and chars is not None
            and following[0] == "single"
            and following[2] in (0, ord("+"))
            and following[1] is not None
            and not (chars & following[1])
        ):
            continue  # it must stop where the next class starts: nothing to give back
        if quantifier == ord("?"):
            halves += 1
        else:
            repeats += 1
    return repeats, halves, anchored
