"""INS/NIR control key, Corsica included."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.identity import NirError, is_valid_nir, nir_key, parse_nir


@pytest.mark.parametrize(
    ("nir", "key"),
    [
        ("2690549588157", 80),  # the classic published example
        ("1841276451089", 46),
    ],
)
def test_known_keys(nir: str, key: int) -> None:
    assert nir_key(nir) == key
    assert is_valid_nir(f"{nir}{key:02d}")


def test_formula_is_97_minus_mod_97() -> None:
    assert nir_key("1800575123456") == 97 - (1800575123456 % 97)


def test_corsica_2a_counts_as_19_and_2b_as_18() -> None:
    assert nir_key("180052A004123") == 97 - (1800519004123 % 97)
    assert nir_key("180052B004123") == 97 - (1800518004123 % 97)
    assert nir_key("180052A004123") != nir_key("180052B004123")
    nir = parse_nir(f"1 80 05 2a 004 123 {nir_key('180052A004123'):02d}")
    assert nir.department == "2A"
    assert nir.birthplace_code == "2A004"


def test_parse_parts() -> None:
    nir = parse_nir("2 69 05 49 588 157 80")
    assert (nir.sex, nir.year, nir.month, nir.department, nir.commune, nir.order, nir.key) == (
        2,
        69,
        5,
        "49",
        "588",
        "157",
        80,
    )
    assert not nir.born_abroad and not nir.temporary


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("269054958815781", "key"),
        ("26905495881578", "15 characters"),
        ("569054958815780", "starts with"),
        ("2690549X8815780", "digits"),
        ("2691349588157" + f"{nir_key('2691349588157'):02d}", "month"),
        ("2690049588157" + f"{nir_key('2690049588157'):02d}", "month"),
    ],
)
def test_errors_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(NirError, match=fragment):
        parse_nir(text)


@given(
    body=st.from_regex(r"[1278][0-9]{2}(0[1-9]|1[0-2])([0-9]{2}|2A|2B)[0-9]{6}", fullmatch=True),
    wrong=st.integers(min_value=1, max_value=96),
)
def test_every_wrong_key_is_refused(body: str, wrong: int) -> None:
    key = nir_key(body)
    assert 1 <= key <= 97
    assert is_valid_nir(f"{body}{key:02d}")
    bad = (key - 1 + wrong) % 97 + 1  # any other key in 1..97
    assert not is_valid_nir(f"{body}{bad:02d}")
