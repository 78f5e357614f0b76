"""Free-text race/ethnicity answers mapped through data/text_phrases.csv (read only when a question has no usable
coding)."""

from __future__ import annotations

import re

from .tables import Tables, normalize_phrase

_SPLIT = re.compile(r"[,;/+&|]|\band\b", re.IGNORECASE)


def map_text(text: str, t: Tables) -> tuple[tuple[str, ...], bool]:
    """Targets named by the text, and whether some part of it matched nothing (unmapped).

    The whole text is tried first so that "Black or African American" or "Hispanic, Latino/a, or Spanish origin"
    stay one answer; only then is it split into parts ("White, Irish" -> two answers).
    """
    key = normalize_phrase(text)
    if not key:
        return (), False
    whole = t.text_phrases.get(key)
    if whole is not None:
        return whole, False
    targets: list[str] = []
    unmapped = False
    for part in _SPLIT.split(text):
        part_key = normalize_phrase(part)
        if not part_key:
            continue
        found = t.text_phrases.get(part_key)
        if found is None:
            unmapped = True
        else:
            targets.extend(found)
    return tuple(targets), unmapped
