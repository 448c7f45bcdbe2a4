"""Splitting search-box text into websearch words and the word being typed."""

import pytest

from nutrimatch.search.text import SearchText, parse_search_text


@pytest.mark.parametrize(("raw", "expected"), [
    ("chee", SearchText("", "chee")),
    ("apple chee", SearchText("apple ", "chee")),
    ("apple ", SearchText("apple ")),  # a finished word is matched whole
    ("vitamin c", SearchText("vitamin c")),  # one letter is too little for a prefix
    ('"peanut butter"', SearchText('"peanut butter"')),
    ('"peanut butt', SearchText('"peanut butt')),  # inside an open phrase
    ("soup -chick", SearchText("soup -chick")),  # an excluded word is not being typed into a prefix
    ("-chick", SearchText("-chick")),
    ("gluten-fr", SearchText("gluten-", "fr")),  # a hyphenated word is not a negation
    ("apple or chee", SearchText("apple", "chee", prefix_is_alternative=True)),
    ("apple OR chee", SearchText("apple", "chee", prefix_is_alternative=True)),
    ("or chee", SearchText("or ", "chee")),
    ("crème brûl", SearchText("crème ", "brûl")),
    ("tom_ka", SearchText("tom_", "ka")),
    ("peanut:*", SearchText("peanut:*")),
    ("a\x00b\ncd", SearchText("a b ", "cd")),  # control characters are spaces
])
def test_the_last_word_is_a_prefix_while_it_is_being_typed(raw, expected):
    assert parse_search_text(raw) == expected
