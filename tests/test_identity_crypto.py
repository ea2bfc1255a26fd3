"""Field encryption, wrapping, blind index: pure parts."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.crypto import (
    Cell,
    DecryptionError,
    MasterKeyRing,
    WrongMasterKeyError,
    normalise_name,
    open_field,
    seal_field,
)

MASTER = bytes(range(32))


@given(text=st.text(max_size=200))
def test_seal_open_round_trip(text: str) -> None:
    key = MasterKeyRing.new_data_key()
    blob = seal_field(key, Cell("patient_identities", "birth_name", "pat_1"), text)
    assert open_field(key, Cell("patient_identities", "birth_name", "pat_1"), blob) == text
    if len(text.encode()) >= 4:
        assert text.encode() not in blob


@pytest.mark.parametrize(
    ("table", "column", "row"),
    [
        ("patient_identities", "first_names", "pat_1"),  # another column
        ("patient_identities", "birth_name", "pat_2"),  # another row
        ("identity_history", "birth_name", "pat_1"),  # another table
    ],
)
def test_ciphertext_bound_to_its_cell(table: str, column: str, row: str) -> None:
    key = MasterKeyRing.new_data_key()
    blob = seal_field(key, Cell("patient_identities", "birth_name", "pat_1"), "DUPONT")
    with pytest.raises(DecryptionError):
        open_field(key, Cell(table, column, row), blob)


def test_key_version_is_bound() -> None:
    key = MasterKeyRing.new_data_key()
    blob = bytearray(seal_field(key, Cell("t", "c", "r"), "DUPONT"))
    blob[4] = 2  # claim key version 2
    with pytest.raises(DecryptionError):
        open_field(key, Cell("t", "c", "r"), bytes(blob))


def test_tampering_and_wrong_key_detected() -> None:
    key = MasterKeyRing.new_data_key()
    blob = bytearray(seal_field(key, Cell("t", "c", "r"), "DUPONT"))
    with pytest.raises(DecryptionError):
        open_field(MasterKeyRing.new_data_key(), Cell("t", "c", "r"), bytes(blob))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError):
        open_field(key, Cell("t", "c", "r"), bytes(blob))


def test_wrap_bound_to_patient_and_master() -> None:
    ring = MasterKeyRing(MASTER)
    data_key = MasterKeyRing.new_data_key()
    wrapped = ring.wrap("pat_1", 1, data_key)
    assert ring.unwrap("pat_1", 1, wrapped) == data_key
    assert data_key not in wrapped
    with pytest.raises(DecryptionError):
        ring.unwrap("pat_2", 1, wrapped)
    with pytest.raises(DecryptionError):
        MasterKeyRing(os.urandom(32)).unwrap("pat_1", 1, wrapped)


def test_key_id_identifies_master_without_revealing_it() -> None:
    assert MasterKeyRing(MASTER).key_id == MasterKeyRing(MASTER).key_id
    assert MasterKeyRing(MASTER).key_id != MasterKeyRing(os.urandom(32)).key_id
    assert MASTER.hex() not in repr(MasterKeyRing(MASTER))


def test_master_key_length_checked() -> None:
    with pytest.raises(WrongMasterKeyError, match="32 bytes"):
        MasterKeyRing(b"short")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Lefèvre-Durand", "LEFEVRE DURAND"),
        ("  lefevre   durand ", "Lefèvre—Durand"),
        ("Hélène", "HELENE"),
        ("D'Artagnan", "d artagnan"),
        ("Cœur", "COEUR"),
        ("Müller", "MULLER"),
    ],
)
def test_blind_index_matches_spelling_variants(a: str, b: str) -> None:
    ring = MasterKeyRing(MASTER)
    assert normalise_name(a) == normalise_name(b)
    assert ring.blind_index(a) == ring.blind_index(b)


def test_blind_index_keyed_and_discriminating() -> None:
    ring = MasterKeyRing(MASTER)
    assert ring.blind_index("DUPONT") != ring.blind_index("DUPOND")
    assert ring.blind_index("DUPONT") != MasterKeyRing(os.urandom(32)).blind_index("DUPONT")
    assert normalise_name("Jean-Pierre  de la Tour") == "JEAN PIERRE DE LA TOUR"


def test_a_master_key_file_that_is_no_key_is_said_so_not_chmodded(tmp_path) -> None:
    import os

    import pytest

    from console.crypto import MasterKeyError, load_master_key

    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n")
    os.chmod(text, 0o644)
    with pytest.raises(MasterKeyError) as refused:
        load_master_key(tmp_path / "samu.db", key_file=text, create=False)
    assert "is not a 32-byte key" in str(refused.value) and "chmod" not in str(refused.value)
    key = tmp_path / "samu.db.key"
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):  # a real key: the advice holds
        load_master_key(tmp_path / "samu.db", key_file=key, create=False)
