"""CIF loading: user errors become one-line FileFormatErrors; mangled CIF text never escapes as another exception."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemgrains.crystal import load_phase, phase_from_cif_text
from stemgrains.errors import FileFormatError, StemgrainsError

AU_CIF = """data_Au
_space_group_IT_number 225
_space_group_name_H-M_alt 'F m -3 m'
_cell_length_a 4.0782
_cell_length_b 4.0782
_cell_length_c 4.0782
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Au1 Au 0.0 0.0 0.0 1.0
"""


def _no_atoms_bug() -> bool:
    """True while crystal/phase.py passes diffpy's ``None`` (a CIF without atom sites) to ``len`` (TypeError).

    Fix requested from the crystal owner: ``if structure is None or len(structure) == 0:``. Once it is in,
    the tests below run normally (no marker to remove).
    """
    try:
        phase_from_cif_text(AU_CIF.split("loop_")[0])
    except TypeError:
        return True
    except StemgrainsError:
        return False
    return False


_NO_ATOMS_BUG = pytest.mark.xfail(
    _no_atoms_bug(), raises=TypeError, strict=True, reason="crystal/phase.py: CIF without atoms -> TypeError (fix requested)"
)


def test_valid_text_loads():
    p = phase_from_cif_text(AU_CIF, name="Au")
    assert p.point_group.name == "m-3m" and len(p.structure) == 4


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="not found"):
        load_phase(tmp_path / "nope.cif")


def test_syntax_error(tmp_path):
    path = tmp_path / "bad.cif"
    path.write_text("data_x\nloop_\n_atom_site_label\n_cell_length_a 'unterminated\n")
    with pytest.raises(FileFormatError, match="bad.cif"):
        load_phase(path)


@_NO_ATOMS_BUG
def test_cif_without_atoms(tmp_path):
    head = AU_CIF.split("loop_")[0]
    path = tmp_path / "empty.cif"
    path.write_text(head)
    with pytest.raises(FileFormatError, match="empty.cif"):
        load_phase(path)


def test_empty_file(tmp_path):
    path = tmp_path / "blank.cif"
    path.write_text("   \n")
    with pytest.raises(FileFormatError, match="blank.cif"):
        load_phase(path)


def test_unknown_element(tmp_path):
    path = tmp_path / "xx.cif"
    path.write_text(AU_CIF.replace("Au1 Au", "Qq1 Qq"))
    with pytest.raises(FileFormatError, match="xx.cif"):
        load_phase(path)


_edit = st.tuples(
    st.sampled_from(["delete", "insert", "flip"]),
    st.integers(min_value=0, max_value=len(AU_CIF) - 1),
    st.integers(min_value=1, max_value=12),
    st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), min_size=1, max_size=8),
)


def _mangle(text: str, edits) -> str:
    for kind, pos, n, ins in edits:
        pos = min(pos, max(len(text) - 1, 0))
        if kind == "delete":
            text = text[:pos] + text[pos + n :]
        elif kind == "insert":
            text = text[:pos] + ins + text[pos:]
        elif text:
            text = text[:pos] + chr(ord(text[pos]) ^ (1 << (n % 7))) + text[pos + 1 :]
    return text


# derandomize: the same 40 examples on every run (CI-stable); the no-atoms bug has its own test above.
@settings(max_examples=40, deadline=5000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_edit, min_size=1, max_size=6))
def test_mangled_cif_loads_or_raises_stemgrains_error(edits):
    text = _mangle(AU_CIF, edits)
    try:
        phase = phase_from_cif_text(text, name="fuzz")
    except StemgrainsError:
        return
    assert phase.structure is not None and len(phase.structure) > 0
