"""ICD-10-CM search over the code set of the `simple-icd-10-cm` package (the CMS release it ships).

The index is built once per process, on first use (about a second), under a lock: every code that is a
category or (extended) subcategory, with its description, split into words. A search is then a few set
operations, fast enough to run on every keystroke:

- a query shaped like a code (`E11`, `e11.6`, `I1`) matches codes by prefix, dots ignored;
- otherwise every word of the query must start a word of the description (`type 2 diab` finds E11.*).

Billable codes (the leaves of the classification) come first, then shorter (more general) codes, so
"hypertension" answers I10 first. Only billable codes can be chosen as a diagnosis.
"""
from __future__ import annotations

import bisect
import re
import threading
import warnings
from dataclasses import dataclass

DEFAULT_LIMIT = 15
MIN_QUERY = 2
_CODE_QUERY = re.compile(r"^[A-Za-z][0-9][0-9A-Za-z.]*$")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Code:
    code: str  # with its dot: E11.9
    description: str
    billable: bool


def _dotted(plain: str) -> str:
    return plain if len(plain) <= 3 else f"{plain[:3]}.{plain[3:]}"


class _Index:
    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the package reads its data with read_text
            import simple_icd_10_cm as icd

        self.codes: list[Code] = []
        self.plain: list[str] = []  # codes without dots, for prefix search
        words: dict[str, set[int]] = {}
        for raw in icd.get_all_codes(False):
            if icd.is_chapter_or_block(raw):
                continue
            position = len(self.codes)
            description = icd.get_description(raw)
            self.codes.append(Code(_dotted(raw), description, icd.is_leaf(raw)))
            self.plain.append(raw)
            for word in _WORD.findall(description.lower()):
                words.setdefault(word, set()).add(position)
        self.words = sorted(words)
        self.postings = [frozenset(words[w]) for w in self.words]
        self.by_plain = {plain: position for position, plain in enumerate(self.plain)}
        self.sorted_plain = sorted(range(len(self.plain)), key=self.plain.__getitem__)
        self.sorted_plain_keys = [self.plain[i] for i in self.sorted_plain]

    def _starting_with(self, word: str) -> set[int]:
        found: set[int] = set()
        start = bisect.bisect_left(self.words, word)
        for i in range(start, len(self.words)):
            if not self.words[i].startswith(word):
                break
            found |= self.postings[i]
        return found

    def by_code(self, prefix: str) -> list[int]:
        start = bisect.bisect_left(self.sorted_plain_keys, prefix)
        end = bisect.bisect_left(self.sorted_plain_keys, prefix + "\x7f")
        return self.sorted_plain[start:end]

    def by_words(self, query: str) -> list[int]:
        words = _WORD.findall(query.lower())
        if not words:
            return []
        found: set[int] | None = None
        for word in sorted(words, key=len, reverse=True):  # the longest word narrows most
            matches = self._starting_with(word)
            found = matches if found is None else found & matches
            if not found:
                return []
        return list(found or ())


_index: _Index | None = None
_lock = threading.Lock()


def _get_index() -> _Index:
    global _index
    if _index is None:
        with _lock:
            if _index is None:
                _index = _Index()
    return _index


def search(query: str, limit: int = DEFAULT_LIMIT) -> list[Code]:
    """Codes matching `query` (a code prefix or words of the description), billable first."""
    query = (query or "").strip()
    if len(query) < MIN_QUERY:
        return []
    index = _get_index()
    if _CODE_QUERY.match(query):
        positions = index.by_code(query.upper().replace(".", ""))
    else:
        positions = index.by_words(query)
    phrase = query.lower()
    codes = [index.codes[p] for p in positions]
    codes.sort(key=lambda c: (not c.billable, phrase not in c.description.lower(), len(c.code), c.code))
    return codes[:limit]


def lookup(code: str) -> Code | None:
    """The code as written (dot optional, any case), or None if it is not an ICD-10-CM code."""
    index = _get_index()
    position = index.by_plain.get((code or "").strip().upper().replace(".", ""))
    return None if position is None else index.codes[position]


_warming = threading.Event()


def warm() -> None:
    """Start building the index in a background thread, once per process (the doctor's pages call this,
    so the first keystroke does not wait for it)."""
    if _index is None and not _warming.is_set():
        _warming.set()
        threading.Thread(target=_get_index, name="icd10-index", daemon=True).start()
