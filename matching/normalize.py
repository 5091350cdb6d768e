"""Canonical and diacritic-folded forms of Vietnamese names, birth dates, genders and ID numbers,
computed over whole columns (Arrow kernels; Python only over the distinct syllables)."""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import blake2b

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from popsync.reference.provinces import PROVINCES_63
from popsync.text import canonical_syllable, fold_syllable

# --- names -------------------------------------------------------------------------------------

# Birth years outside this range are typing errors, not dates (shared with the pipeline's bands).
BIRTH_YEAR_MIN, BIRTH_YEAR_MAX = 1850, 2150


@dataclass
class Names:
    """Name columns as integer keys. Full names are 64-bit hashes of their syllables' text (equal
    keys mean equal names, whatever tables were normalized); syllables are codes into a
    vocabulary of folded syllables, shared by the tables normalized against each other."""

    canonical: np.ndarray  # uint64 key of the canonical full name (0 when empty)
    folded: np.ndarray  # uint64 key of the folded full name (0 when empty)
    family: np.ndarray  # int32 folded-syllable code of the first syllable, -1 when empty
    given: np.ndarray  # int32 folded-syllable code of the last syllable, -1 when empty
    given_canonical: np.ndarray  # int32 canonical-syllable code of the last syllable
    middle: np.ndarray  # uint64 multiset hash of the folded middle syllables (0: none)
    tokens: np.ndarray  # uint64 multiset hash of all folded syllables (order-free)
    n_syllables: np.ndarray  # int16
    folded_syllables: pa.ListArray  # per row, the folded-syllable codes in order
    syllable_vocab: np.ndarray  # object array of folded syllables, indexed by code
    canonical_vocab: list[str]  # canonical syllables, indexed by given_canonical's codes
    folded_of_canonical: np.ndarray  # int32: the folded code of each canonical syllable

    def take(self, rows: np.ndarray | slice) -> Names:
        """The same names for a subset of rows (vocabulary shared)."""
        if isinstance(rows, slice):
            start, stop, _ = rows.indices(len(self.canonical))
            lists = self.folded_syllables.slice(start, stop - start)
        else:
            lists = self.folded_syllables.take(pa.array(rows))
        return Names(
            self.canonical[rows], self.folded[rows], self.family[rows], self.given[rows],
            self.given_canonical[rows], self.middle[rows], self.tokens[rows],
            self.n_syllables[rows], lists, self.syllable_vocab, self.canonical_vocab,
            self.folded_of_canonical,
        )

    @property
    def empty(self) -> np.ndarray:
        return self.n_syllables == 0

    def folded_text(self, rows: np.ndarray) -> list[str]:
        """The folded full names of some rows ("nguyen thi thuy"), for string similarity."""
        lists = self.folded_syllables.take(pa.array(rows))
        lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int64())
        words = pa.array(self.syllable_vocab, pa.string()).take(pc.list_flatten(lists))
        return pc.binary_join(pa.ListArray.from_arrays(offsets, words), " ").to_pylist()


def _codes(values: list[str], known: list[str] = ()) -> tuple[np.ndarray, list[str]]:
    """Dense codes of a list of strings and the distinct strings in code order, the ``known``
    strings keeping their codes."""
    index: dict[str, int] = {v: i for i, v in enumerate(known)}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), np.int32, len(values))
    return codes, list(index)


def _syllable_hashes(syllables, seed: int) -> np.ndarray:
    """A 64-bit hash of each syllable's text (never 0): sums of them make an order-free name
    key, equal for equal names whichever vocabulary coded them."""
    salt = seed.to_bytes(8, "little")
    return np.fromiter(
        (int.from_bytes(blake2b(s.encode(), digest_size=8, salt=salt).digest(), "little") | 1
         for s in syllables), np.uint64, len(syllables))


def _encode_strings(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    encoded = pc.dictionary_encode(array)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    return codes, np.array(encoded.dictionary.to_pylist(), dtype=object)


def normalize_names(full_name: pa.Array | pa.ChunkedArray, against: Names | None = None
                    ) -> Names:
    """Canonical and folded codes of a column of full names, split into family/middle/given;
    coded ``against`` another table's names (their vocabulary, extended) so the two compare."""
    if isinstance(full_name, pa.ChunkedArray):
        full_name = full_name.combine_chunks()
    # NFC, case and tone style are fixed per distinct syllable (canonical_syllable), not per row
    text = pc.utf8_trim_whitespace(pc.fill_null(full_name.cast(pa.string()), ""))
    # an empty name has no syllables (splitting "" would give one empty syllable)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    syllables = pc.utf8_split_whitespace(text)
    lengths = pc.fill_null(pc.list_value_length(syllables), 0)
    lengths = lengths.to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = pc.list_flatten(syllables)
    raw_codes, raw_vocab = _encode_strings(flat)

    known_canonical = against.canonical_vocab if against is not None else []
    known_folded = list(against.syllable_vocab) if against is not None else []
    canonical_codes_of_raw, canonical_vocab = _codes([canonical_syllable(s) for s in raw_vocab],
                                                     known_canonical)
    new_folded, folded_vocab = _codes(
        [fold_syllable(s) for s in canonical_vocab[len(known_canonical):]], known_folded)
    folded_codes_of_canonical = np.concatenate([
        against.folded_of_canonical if against is not None else np.zeros(0, np.int32),
        new_folded]).astype(np.int32)
    syllable_canonical = canonical_codes_of_raw[raw_codes]
    syllable_folded = folded_codes_of_canonical[syllable_canonical]

    has = lengths > 0
    first = np.where(has, offsets[:-1], 0)
    last = np.where(has, offsets[1:] - 1, 0)

    def pick(codes: np.ndarray, at: np.ndarray) -> np.ndarray:
        if not len(codes):
            return np.full(len(lengths), -1, np.int32)
        return np.where(has, codes[at], -1).astype(np.int32)

    family, given = pick(syllable_folded, first), pick(syllable_folded, last)
    given_canonical = pick(syllable_canonical, last)

    hashes = _syllable_hashes(folded_vocab, seed=0x5EED)
    summed = np.cumsum(hashes[syllable_folded], dtype=np.uint64)
    cumulative = np.concatenate([[np.uint64(0)], summed])
    with np.errstate(over="ignore"):
        tokens = cumulative[offsets[1:]] - cumulative[offsets[:-1]]
        inner = lengths >= 3
        middle = np.where(
            inner,
            cumulative[np.where(inner, offsets[1:] - 1, 0)]
            - cumulative[np.where(inner, offsets[:-1] + 1, 0)],
            np.uint64(0),
        ).astype(np.uint64)

    position = np.arange(len(syllable_folded), dtype=np.int64) - np.repeat(offsets[:-1],
                                                                            lengths)

    def sequence_key(codes: np.ndarray, vocab: list[str], seed: int) -> np.ndarray:
        # order-aware: each syllable's hash depends on its position in the name
        per_code = _syllable_hashes(vocab, seed)
        with np.errstate(over="ignore"):
            step = position.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            mixed = mix64(per_code[codes] + step)
            summed = np.concatenate([[np.uint64(0)], np.cumsum(mixed, dtype=np.uint64)])
            return summed[offsets[1:]] - summed[offsets[:-1]]

    folded_lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int64()),
                                            pa.array(syllable_folded, pa.int32()))
    return Names(
        sequence_key(syllable_canonical, canonical_vocab, 1),
        sequence_key(syllable_folded, folded_vocab, 2), family, given, given_canonical, middle,
        tokens, lengths.astype(np.int16), folded_lists, np.array(folded_vocab, dtype=object),
        canonical_vocab, folded_codes_of_canonical,
    )


def mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads bits so sums of hashes do not collide by structure."""
    with np.errstate(over="ignore"):
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return values ^ (values >> np.uint64(31))


# --- birth dates -------------------------------------------------------------------------------

NO_DATE, YEAR, MONTH, FULL = 0, 1, 2, 3  # precision of a birth date
_DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int16)


@dataclass
class BirthDates:
    year: np.ndarray  # int16, 0 when unknown
    month: np.ndarray  # int8, 0 when unknown
    day: np.ndarray  # int8, 0 when unknown
    precision: np.ndarray  # int8: NO_DATE, YEAR, MONTH, FULL
    unparsable: np.ndarray  # bool: a value was given but is not a valid date

    def take(self, rows) -> BirthDates:
        return BirthDates(self.year[rows], self.month[rows], self.day[rows],
                          self.precision[rows], self.unparsable[rows])


def parse_birth_dates(values: pa.Array | pa.ChunkedArray) -> BirthDates:
    """Parse ``YYYY-MM-DD`` / ``YYYY-MM`` / ``YYYY`` keeping the precision; anything else given
    (``31/12/1990``, ``1990-02-30``, letters) is flagged unparsable, never guessed."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    text = pc.utf8_trim_whitespace(pc.fill_null(values.cast(pa.string()), ""))
    # one regex pass: year, optional month, optional day (unmatched groups come back "")
    parts = pc.extract_regex(text, r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2}))?)?$")
    shaped = parts.is_valid().to_numpy(zero_copy_only=False)

    def number(field: str) -> np.ndarray:
        digits = pc.fill_null(pc.struct_field(parts, field), "")
        digits = pc.if_else(pc.equal(digits, ""), pa.scalar("0"), digits)
        return pc.cast(digits, pa.int32()).to_numpy(zero_copy_only=False)

    year, month, day = number("y"), number("m"), number("d")
    def present(field: str) -> np.ndarray:
        value = pc.fill_null(pc.struct_field(parts, field), "")
        return shaped & pc.not_equal(value, "").to_numpy(zero_copy_only=False)

    has_month, has_day = present("m"), present("d")
    matches = {FULL: has_day, MONTH: has_month & ~has_day, YEAR: shaped & ~has_month}
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    max_day = np.where(month_ok, _DAYS_IN_MONTH[np.clip(month, 0, 12)], 0)
    max_day = np.where((month == 2) & ~leap, 28, max_day)
    year_ok = (year >= BIRTH_YEAR_MIN) & (year <= BIRTH_YEAR_MAX)
    full = matches[FULL] & year_ok & month_ok & (day >= 1) & (day <= max_day)
    month_only = matches[MONTH] & year_ok & month_ok
    year_only = matches[YEAR] & year_ok
    precision = np.select([full, month_only, year_only], [FULL, MONTH, YEAR], NO_DATE)
    given = pc.not_equal(text, "").to_numpy(zero_copy_only=False)
    unparsable = given & (precision == NO_DATE)
    # "1990-15-04" is no date, but its year is still worth searching and comparing on
    precision = np.where(unparsable & shaped & year_ok, YEAR, precision)
    known = precision > NO_DATE
    return BirthDates(
        np.where(known, year, 0).astype(np.int16),
        np.where(precision >= MONTH, month, 0).astype(np.int8),
        np.where(precision == FULL, day, 0).astype(np.int8),
        precision.astype(np.int8),
        unparsable,
    )


# --- gender ------------------------------------------------------------------------------------

NO_GENDER, MALE, FEMALE = 0, 1, 2
_GENDER_WORDS = {"m": MALE, "male": MALE, "nam": MALE, "f": FEMALE, "female": FEMALE,
                 "nu": FEMALE, "nữ": FEMALE}


@dataclass
class Genders:
    code: np.ndarray  # int8: NO_GENDER, MALE, FEMALE
    unknown: np.ndarray  # bool: a value was given but is not a gender we know

    def take(self, rows) -> Genders:
        return Genders(self.code[rows], self.unknown[rows])


def parse_genders(values: pa.Array | pa.ChunkedArray) -> Genders:
    """``M``/``F`` in any case (and Nam/Nữ, male/female); other values are flagged unknown."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.fill_null(values.cast(pa.string()), "")))
    text = pc.utf8_normalize(text, "NFC")
    codes, vocab = _encode_strings(text)
    lookup = np.array([_GENDER_WORDS.get(v, NO_GENDER) for v in vocab] or [0], np.int8)
    code = lookup[codes] if len(codes) else np.zeros(0, np.int8)
    given = np.array([v != "" for v in vocab] or [False])[codes] if len(codes) else code > 0
    return Genders(code, given & (code == NO_GENDER))


# --- identifiers -------------------------------------------------------------------------------

ID_MISSING, ID_PERSONAL, ID_OLD, ID_INVALID = 0, 1, 2, 3
_PROVINCE_PREFIXES = sorted("0" + code for code in PROVINCES_63)


@dataclass
class Identifiers:
    kind: np.ndarray  # int8: ID_MISSING, ID_PERSONAL, ID_OLD, ID_INVALID
    number: np.ndarray  # int64 value of an all-digit 9- or 12-digit ID, -1 otherwise
    twelve_digits: np.ndarray  # bool: 12 digits (a personal ID, or one with a bad prefix)

    def take(self, rows) -> Identifiers:
        return Identifiers(self.kind[rows], self.number[rows], self.twelve_digits[rows])


def clean_ids(values: pa.Array | pa.ChunkedArray) -> Identifiers:
    """Remove spaces, dots and dashes; classify as 12-digit personal ID (known province prefix
    and century digit), old 9-digit ID number, invalid (letters, wrong length) or missing."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    text = values.cast(pa.string())
    # separators are rare: strip them only where the value is not all digits already
    plain = pc.fill_null(pc.ascii_is_decimal(text), True)
    if not pc.all(plain).as_py():
        text = pc.if_else(plain, text, pc.replace_substring_regex(text, r"[\s.\-]", ""))
    present = pc.fill_null(pc.not_equal(text, ""), False).to_numpy(zero_copy_only=False)
    text = pc.if_else(pa.array(present), text, pa.scalar(None, pa.string()))
    length = pc.fill_null(pc.utf8_length(text), 0)
    all_digits = pc.fill_null(pc.ascii_is_decimal(text), False)
    twelve = pc.and_(all_digits, pc.equal(length, 12))
    nine = pc.and_(all_digits, pc.equal(length, 9))
    prefix_ok = pc.is_in(pc.utf8_slice_codeunits(text, 0, 3), pa.array(_PROVINCE_PREFIXES))
    century_ok = pc.is_in(pc.utf8_slice_codeunits(text, 3, 4), pa.array(list("01234567")))
    personal = pc.fill_null(pc.and_(twelve, pc.and_(prefix_ok, century_ok)), False)
    twelve = twelve.to_numpy(zero_copy_only=False)
    nine = nine.to_numpy(zero_copy_only=False)
    personal = personal.to_numpy(zero_copy_only=False)
    kind = np.select([~present, personal, nine], [ID_MISSING, ID_PERSONAL, ID_OLD], ID_INVALID)
    digits = pa.array(twelve | nine)
    number = pc.cast(pc.if_else(digits, text, pa.scalar("-1")), pa.int64())
    return Identifiers(kind.astype(np.int8), number.to_numpy(zero_copy_only=False), twelve)


def province_codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Province codes as int16 (-1 when missing or unknown) and the unknown-but-given flags."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    text = pc.utf8_trim_whitespace(pc.fill_null(values.cast(pa.string()), ""))
    known = pc.is_in(text, pa.array(sorted(PROVINCES_63))).to_numpy(zero_copy_only=False)
    code = pc.cast(pc.if_else(pa.array(known), text, pa.scalar("-1")), pa.int16())
    given = pc.not_equal(text, "").to_numpy(zero_copy_only=False)
    return code.to_numpy(zero_copy_only=False), given & ~known
