"""Search-box text → the parts of a tsquery, without ever handing user text to `to_tsquery`.

The text goes to PostgreSQL's `websearch_to_tsquery`, which accepts anything a person types ("quoted
phrases", -negation, `or`) and never fails. What it lacks is type-ahead, so the word being typed — the last
one, when the text does not end with a space or a closing quote — is split off and matched as a prefix
(`'chee':*` finds cheese, `'chocola':* | 'chocol' | 'choc'` chocolate, whose stem is chocol). The SQL function
`search_tsquery` (sql/migrations/0007_search.sql, 0017_search_prefix_past_the_stem.sql) joins the parts; it
makes the prefix lexemes from PostgreSQL's own output of `plainto_tsquery`, so no user character ever reaches
tsquery syntax.

A single letter is not a prefix (it would match a large share of any catalog): it stays an ordinary word, as
in "vitamin c".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_PREFIX_LENGTH = 2
_TRAILING_WORD = re.compile(r"[^\W_]+$")
_TRAILING_OR = re.compile(r"(^|\s)or\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SearchText:
    words: str  # for websearch_to_tsquery
    prefix: str | None = None  # letters and digits only
    prefix_is_alternative: bool = False  # "apple or chee": words OR prefix, instead of AND


def parse_search_text(raw: str) -> SearchText:
    text = "".join(" " if ch.isspace() or not ch.isprintable() else ch for ch in raw)
    match = _TRAILING_WORD.search(text)
    if match is None or len(match.group()) < MIN_PREFIX_LENGTH or text.count('"') % 2 == 1:
        return SearchText(text)
    start = match.start()
    if start > 0 and text[start - 1] == "-" and (start == 1 or not text[start - 2].isalnum()):
        return SearchText(text)  # "-nut": a negated word, not a word being typed
    words = text[:start]
    alternative = _TRAILING_OR.search(words)
    if alternative and words[: alternative.start()].strip():
        return SearchText(words[: alternative.start()], match.group(), prefix_is_alternative=True)
    return SearchText(words, match.group())
