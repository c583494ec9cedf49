"""Bounding text that comes from outside: answers, events, configuration."""

from __future__ import annotations


def clip(text: str, limit: int = 80) -> str:
    """At most `limit` characters, "..." marking a cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cut_utf8(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, never cutting through a character."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def plural(n: int, word: str, words: str | None = None) -> str:
    """`1 desktop`, `2,355 desktops`."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"
