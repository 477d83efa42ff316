"""Names kept in Chinese and English: show the one of the active language."""

from __future__ import annotations

from django.utils.translation import get_language


def english_active() -> bool:
    return (get_language() or "").startswith("en")


class BilingualNameMixin:
    """For models with `name` and `name_en`: the English name when English is active and one
    is set, else the Chinese name."""

    name: str
    name_en: str

    @property
    def display_name(self) -> str:
        return self.name_en if english_active() and self.name_en else self.name
