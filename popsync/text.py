"""Canonical and diacritic-folded spellings of Vietnamese names, one string at a time: for
whoever sorts or compares names (the portal, the matching engine's syllable vocabulary)."""

from __future__ import annotations

import unicodedata

_TONES = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # huyền, sắc, hỏi, ngã, nặng
# Open syllables ending in oa / oe / uy carry the tone on either vowel depending on the writer
# ("hoà"/"hòa", "thuỷ"/"thủy"); canonical form puts it on the first vowel. With a final consonant
# ("hoàng", "huỳnh") both styles agree, so only syllable endings are rewritten.
_TONE_ENDINGS = {
    unicodedata.normalize("NFC", first + second + tone): unicodedata.normalize(
        "NFC", first + tone + second
    )
    for first, second in (("o", "a"), ("o", "e"), ("u", "y"))
    for tone in _TONES
}
# Look-alikes of đ that typists and OCR produce: eth (Ð U+00D0 lower-cased to ð U+00F0),
# and the African D with stroke (Ɖ/ɖ).
_D_LOOKALIKES = str.maketrans({"ð": "đ", "ɖ": "đ", "Ð": "đ", "Ɖ": "đ"})


def canonical_syllable(syllable: str) -> str:
    """One lower-case NFC syllable in canonical spelling: đ look-alikes mapped, one tone style."""
    text = unicodedata.normalize("NFC", syllable.lower().translate(_D_LOOKALIKES))
    ending = text[-2:]
    # In "quý", "quỷ" the u belongs to the consonant qu: the tone is on y in every style.
    if ending in _TONE_ENDINGS and not (ending[0] == "u" and text[:-2].endswith("q")):
        text = text[:-2] + _TONE_ENDINGS[ending]
    return text


def fold_syllable(syllable: str) -> str:
    """Remove every diacritic and map đ (and its look-alikes) to d: "Đặng" -> "dang"."""
    text = unicodedata.normalize("NFD", syllable.lower().translate(_D_LOOKALIKES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.replace("đ", "d")


def canonical_name(full_name: str | None) -> str:
    """The canonical form of one name (the matching engine's
    ``normalize_names`` does the same over a column)."""
    if full_name is None:
        return ""
    text = unicodedata.normalize("NFC", full_name)
    return " ".join(canonical_syllable(s) for s in text.split())


def folded_name(full_name: str | None) -> str:
    """The folded form of one name: canonical, then without diacritics."""
    return " ".join(fold_syllable(s) for s in canonical_name(full_name).split())



def folded_names(full_names):
    """``folded_name`` over an Arrow array of names (null -> ""): each distinct syllable is
    folded once, so a night's millions of names cost a vocabulary, not a loop over rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(full_names, pa.ChunkedArray):
        full_names = full_names.combine_chunks()
    names = pc.fill_null(pa.array(full_names).cast(pa.large_string()), "")
    # split_pattern_regex keeps empty pieces at the ends: trim first, "" stays [""]
    syllables = pc.split_pattern_regex(pc.utf8_trim_whitespace(names), r"\s+")
    flat = pc.list_flatten(syllables)
    vocabulary = pc.unique(flat)
    folded = pa.array([fold_syllable(canonical_syllable(s)) for s in vocabulary.to_pylist()],
                      pa.large_string())
    rows = pa.LargeListArray.from_arrays(syllables.offsets.cast(pa.int64()),
                                         pc.take(folded, pc.index_in(flat, vocabulary)))
    return pc.binary_join(rows, pa.scalar(" ", pa.large_string()))
