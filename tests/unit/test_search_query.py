"""What a message is found by, and what a search box's text asks for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend_services.core.errors import ValidationFailed
from backend_services.core.search import MAX_TERM_CHARS, BadQuery, parse_query, terms
from backend_services.core.store.search import Cursor


def test_a_message_is_found_by_its_distinct_words_whatever_their_case_or_width() -> None:
    assert terms("Lunch at **noon**? LUNCH! café_au_lait 42") == [
        "lunch",
        "at",
        "noon",
        "café_au_lait",
        "42",
    ]
    assert terms("\uff26\uff35\uff2c\uff2c width") == ["full", "width"]  # Full-width letters.
    assert terms("Grüße, Straße") == ["grüsse", "strasse"]  # casefold, not lower
    assert terms("") == []
    assert terms("x" * 100) == ["x" * MAX_TERM_CHARS]


def test_a_query_reads_words_phrases_senders_and_places() -> None:
    query = parse_query('Lunch "at  Noon" from:@Ada in:#Food in:"design team"')
    assert query.words == ["lunch", "at", "noon"]
    assert query.phrases == ["at noon"]
    assert query.senders == ["ada"]
    assert query.places == ["#food", "design team"]
    assert parse_query("from:ada").words == []
    assert parse_query('"unclosed quote').words == ["unclosed", "quote"]
    assert parse_query("FROM:ada x").senders == ["ada"]
    assert parse_query("from: x").words == ["from", "x"]  # Nothing after the colon: words.


@pytest.mark.parametrize(
    "text", ["", "   ", "in:#food", "!!!", "x" * 201, " ".join(f"w{n}" for n in range(11))]
)
def test_a_query_that_asks_for_nothing_or_too_much_is_refused(text: str) -> None:
    with pytest.raises(BadQuery):
        parse_query(text)


def test_a_cursor_reads_back_and_a_made_up_one_is_refused() -> None:
    cursor = Cursor(datetime(2026, 12, 7, 10, 0, 1, 500000, tzinfo=UTC), "abc")
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("not-a-cursor", "", "bm8tdGltZQ", Cursor.encode(Cursor(datetime(2026, 1, 1), "x"))):
        with pytest.raises(ValidationFailed):
            Cursor.decode(bad)
