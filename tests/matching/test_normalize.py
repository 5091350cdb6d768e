"""Normalization rules of the matching engine, on real Vietnamese spellings."""

import unicodedata

import numpy as np
import pyarrow as pa
import pytest

from matching.normalize import (
    FULL,
    ID_INVALID,
    ID_MISSING,
    ID_OLD,
    ID_PERSONAL,
    MONTH,
    NO_DATE,
    YEAR,
    clean_ids,
    normalize_names,
    parse_birth_dates,
    parse_genders,
    province_codes,
)
from popsync.text import canonical_name, canonical_syllable, fold_syllable, folded_name


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("Hoà", "hòa"),  # tone on the second vowel of an open "oa"
        ("Hòa", "hòa"),
        ("Thuỷ", "thủy"),
        ("Thủy", "thủy"),
        ("Khoẻ", "khỏe"),
        ("Hoàng", "hoàng"),  # closed syllable: both styles agree, untouched
        ("Huỳnh", "huỳnh"),
        ("Quý", "quý"),  # qu is a consonant: tone stays on y
        ("ÐẶNG", "đặng"),  # look-alike eth U+00D0
    ],
)
def test_canonical_syllable_has_one_tone_style_and_case(written, canonical):
    assert canonical_syllable(written) == canonical


def test_nfd_input_gives_the_same_canonical_name_as_nfc():
    assert len("Nguyễn") == 6 and len(nfd("Nguyễn")) == 8
    assert canonical_name(nfd("Nguyễn Thị Thuỷ")) == canonical_name("NGUYỄN THỊ THỦY")
    assert canonical_name("  Nguyễn   Văn\tHòa ") == "nguyễn văn hòa"


@pytest.mark.parametrize(
    ("name", "folded"),
    [("Đặng Thị Thủy", "dang thi thuy"), ("Ðỗ Văn Đức", "do van duc"),
     (nfd("Nguyễn Văn Hoà"), "nguyen van hoa"), ("TRƯƠNG MỸ LỆ", "truong my le")],
)
def test_folded_form_drops_every_diacritic_and_maps_d(name, folded):
    assert folded_name(name) == folded
    assert fold_syllable("Đ") == fold_syllable("Ð") == "d"


def test_a_name_without_diacritics_is_not_canonically_equal_but_folds_equal():
    names = normalize_names(pa.array(["Nguyễn Thị Lan", "Nguyen Thi Lan", "NGUYỄN THỊ LAN"]))
    assert names.canonical[0] != names.canonical[1]
    assert names.canonical[0] == names.canonical[2]
    assert names.folded[0] == names.folded[1] == names.folded[2]


def test_names_split_into_family_middle_given_and_an_order_free_key():
    names = normalize_names(
        pa.array(["Trần Thị Thu Hà", "Hà Trần Thị Thu", "Trần Hà", "", None, nfd("Lê Hoà")])
    )
    vocab = names.syllable_vocab
    assert vocab[names.family[0]] == "tran" and vocab[names.given[0]] == "ha"
    assert names.tokens[0] == names.tokens[1]  # same syllables, swapped order
    assert names.canonical[0] != names.canonical[1]
    assert names.middle[2] == 0 and names.middle[0] != 0
    assert names.family[2] == names.family[0] and names.given[2] == names.given[0]
    assert list(names.n_syllables) == [4, 4, 2, 0, 0, 2]
    assert names.empty[3] and names.empty[4]
    assert names.folded_text(np.array([5, 0, 3])) == ["le hoa", "tran thi thu ha", ""]
    assert names.canonical[3] == names.canonical[4] == 0


def test_birth_dates_keep_their_precision_and_flag_unparsable_values():
    dates = parse_birth_dates(pa.array(
        ["1990-04-15", "1990-04", "1990", "1990-02-30", "15/04/1990", "199O", "", None,
         "2000-02-29", "1900-02-29"]
    ))
    # an impossible date of the right shape keeps its year (searchable), still unparsable
    assert list(dates.precision) == [FULL, MONTH, YEAR, YEAR, NO_DATE, NO_DATE, NO_DATE,
                                     NO_DATE, FULL, YEAR]
    assert (dates.year[0], dates.month[0], dates.day[0]) == (1990, 4, 15)
    assert (dates.year[1], dates.month[1], dates.day[1]) == (1990, 4, 0)
    assert list(dates.unparsable) == [False, False, False, True, True, True, False, False,
                                      False, True]


def test_gender_values():
    genders = parse_genders(pa.array(["M", "f", " Nữ ", nfd("Nữ"), "Nam", "X", "", None]))
    assert list(genders.code) == [1, 2, 2, 2, 1, 0, 0, 0]
    assert list(genders.unknown) == [False] * 5 + [True, False, False]


def test_ids_are_cleaned_and_classified():
    ids = clean_ids(pa.array([
        "079090001234", "079 090 001.234", "123456789", "07909000123A", "999090001234",
        "", None, "0790900012345",
    ]))
    assert list(ids.kind) == [ID_PERSONAL, ID_PERSONAL, ID_OLD, ID_INVALID, ID_INVALID,
                              ID_MISSING, ID_MISSING, ID_INVALID]
    assert ids.number[1] == 79090001234 and ids.number[2] == 123456789
    assert ids.number[3] == -1
    assert list(ids.twelve_digits) == [True, True, False, False, True, False, False, False]


def test_province_codes_flag_unknown_codes():
    code, unknown = province_codes(pa.array(["01", "79", "00", "", None, "1"]))
    assert list(code) == [1, 79, -1, -1, -1, -1]
    assert list(unknown) == [False, False, True, False, False, True]
    assert np.issubdtype(code.dtype, np.integer)
