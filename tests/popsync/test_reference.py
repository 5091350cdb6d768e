"""Reference tables and identifier rules."""

import pytest

from popsync.reference import (
    PROVINCES_34,
    PROVINCES_63,
    UnknownProvinceError,
    classify_id,
    codes_63_of,
    decode_personal_id,
    is_health_card_number,
    is_old_id_number,
    is_vss_code,
    personal_id_consistent,
    province_name,
    to_34,
)
from popsync.reference.identifiers import encode_personal_id_prefix, mask
from popsync.reference.provinces import convert


def test_schemes_have_63_and_34_units_and_every_old_code_maps():
    assert len(PROVINCES_63) == 63
    assert len(PROVINCES_34) == 34
    assert {to_34(code) for code in PROVINCES_63} == set(PROVINCES_34)


@pytest.mark.parametrize(
    ("old", "new"),
    [("74", "79"), ("77", "79"), ("79", "79"), ("27", "24"), ("54", "66"), ("93", "92"),
     ("01", "01"), ("46", "46"), ("64", "52"), ("72", "80")],
)
def test_merger_2025(old, new):
    assert to_34(old) == new


def test_names_and_conversion():
    assert province_name("79") == "TP Hồ Chí Minh"
    assert province_name("52", "63") == "Bình Định"
    assert province_name("52", "34") == "Gia Lai"
    assert codes_63_of("68") == ["60", "67", "68"]
    assert convert("25", "34", "63") == ["17", "25", "26"]
    assert convert("26", "63", "34") == ["25"]
    with pytest.raises(UnknownProvinceError, match="'99'"):
        province_name("99")
    with pytest.raises(UnknownProvinceError):
        to_34("03")


def test_personal_id_decodes_province_gender_century_year():
    decoded = decode_personal_id("079203001234")
    assert decoded.birth_province_code == "79"
    assert decoded.gender == "M"
    assert decoded.birth_year == 2003
    assert decode_personal_id("001185999999").gender == "F"
    assert decode_personal_id("001185999999").birth_year == 1985


@pytest.mark.parametrize(
    "value", ["79203001234", "0792030012345", "07920300123a", "099190012345", "001890012345", ""]
)
def test_invalid_personal_ids(value):
    assert decode_personal_id(value) is None


def test_consistency_with_gender_and_birth_year():
    assert personal_id_consistent("001090123456", "M", 1990)
    assert not personal_id_consistent("001090123456", "F", 1990)
    assert not personal_id_consistent("001090123456", "M", 1991)
    assert personal_id_consistent("001090123456", None, None)
    assert encode_personal_id_prefix("01", "F", 2005) == "001305"


def test_other_identifiers():
    assert is_old_id_number("123456789")
    assert not is_old_id_number("12345678")
    assert is_vss_code("7912345678")
    assert not is_vss_code("9912345678")  # no province 99
    assert not is_vss_code("791234567")
    assert is_health_card_number("DN4797912345678")
    assert not is_health_card_number("DN6797912345678")  # benefit level 1-5
    assert classify_id(" 001090123456 ") == "personal_id"
    assert classify_id("123456789") == "old_id_number"
    assert classify_id("") == "missing"
    assert classify_id("00109012345X") == "invalid"


def test_mask_hides_all_but_the_tail():
    assert mask("001090123456") == "*********456"
    assert mask(None) == "<none>"


def test_tile_map_places_every_province_of_each_scheme_once():
    from popsync.reference.provinces import PROVINCES_34, PROVINCES_63, tile_positions

    for scheme, table in (("63", PROVINCES_63), ("34", PROVINCES_34)):
        tiles = tile_positions(scheme)
        assert set(tiles) == set(table), scheme
        assert len(set(tiles.values())) == len(tiles), f"two provinces share a tile in {scheme}"
    # north to south: Hà Giang above Hà Nội above Huế above HCMC above Cà Mau
    rows = {code: row for code, (row, _) in tile_positions("63").items()}
    assert rows["02"] < rows["01"] < rows["46"] < rows["79"] < rows["96"]
