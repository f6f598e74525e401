"""Phases from CIF files (diffpy.structure → orix ``Phase``) and their storage in results files."""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from orix.crystal_map import Phase, PhaseList

from ..errors import FileFormatError, ParameterError
from ._elements import Z_OF

__all__ = [
    "BUILTIN_CIFS",
    "coerce_phases",
    "load_phase",
    "resolve_cif",
    "phase_from_cif_text",
    "phase_cif_text",
    "write_phases",
    "read_phases",
    "atomic_numbers",
    "has_unique_c_axis",
    "is_hexagonal_like",
    "has_conduction_planes",
]

_CIF_ATTR = "_stemgrains_cif"


def phase_from_cif_text(text: str, name: str = "phase", source: str = "<cif text>") -> Phase:
    """Parse CIF text into an orix ``Phase`` with the full (symmetry-expanded) structure.

    Raises :class:`~stemgrains.errors.FileFormatError` naming ``source`` on any parse problem.
    """
    from diffpy.structure.parsers import p_cif

    if not isinstance(text, str) or not text.strip():
        raise FileFormatError(f"{source}: empty CIF")
    parser = p_cif.P_cif()
    try:
        # the CIF parser (PyCifRW) prints its syntax errors on stdout: keep them out of the command's output
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            structure = parser.parse(text)
    except Exception as err:  # diffpy raises several types (StructureFormatError, ValueError, ...)
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FileFormatError(f"{source}: not a valid CIF ({msg})") from None
    if structure is None or len(structure) == 0:
        raise FileFormatError(f"{source}: CIF has no atom sites")
    lat = structure.lattice
    pars = np.array([lat.a, lat.b, lat.c, lat.alpha, lat.beta, lat.gamma], dtype=float)
    if not np.all(np.isfinite(pars)) or np.any(pars[:3] <= 0) or np.any(pars[3:] <= 0) or np.any(pars[3:] >= 180):
        raise FileFormatError(f"{source}: CIF has an invalid unit cell {pars.tolist()}")
    try:
        sg = parser.spacegroup.number
    except AttributeError:
        sg = None
    # A P1-expanded CIF (only the identity operation listed, all atoms given) that still states its real space
    # group: diffpy trusts the operations and reports P1; the stated number is the crystal's symmetry.
    stated = re.search(r"^\s*_(?:space_group_IT_number|symmetry_Int_Tables_number)\s+(\d+)", text, re.M)
    if stated and (sg in (None, 1)) and 1 < int(stated.group(1)) <= 230:
        sg = int(stated.group(1))
    if sg is None:
        raise FileFormatError(f"{source}: CIF gives no space group (_space_group_IT_number or H-M symbol)")
    try:
        atomic_numbers(structure)
    except FileFormatError as err:
        raise FileFormatError(f"{source}: {err}") from None
    if 3 <= int(sg) <= 15:
        structure = _c_unique(structure)
    frac = [np.array(a.xyz, dtype=float) for a in structure]
    try:
        phase = Phase(name=name, space_group=int(sg), structure=structure)
    except Exception as err:
        raise FileFormatError(f"{source}: cannot build a phase from the CIF ({err})") from None
    # orix re-aligns the lattice (e1 ∥ a, e3 ∥ c*) by placing the atoms' *Cartesian* positions into the
    # rotated lattice, which changes their fractional coordinates whenever diffpy's base was not already
    # aligned (hexagonal/trigonal cells). Fractional coordinates do not depend on the Cartesian frame:
    # restore them so structure factors stay right.
    for atom, xyz in zip(phase.structure, frac):
        atom.xyz = xyz
    setattr(phase, _CIF_ATTR, text)
    return phase


def _c_unique(structure: Any) -> Any:
    """A monoclinic ``structure`` in the b-unique setting (α = γ = 90°, β ≠ 90°, the usual one: P2₁/c) turned to the
    c-unique setting by the cyclic relabelling a b c → c a b (new a = old c, b = old a, c = old b; fractional
    x y z → z x y; γ' = β; handedness kept); any other setting as it is. orix's point group 2/m has its 2-fold
    axis along e3 ∥ c* (c-unique), while in orix's alignment (e1 ∥ a, e3 ∥ c*) the b axis of a b-unique cell
    lies along e2: the symmetry was about the wrong axis (pixels 180° about b apart, the same orientation, came
    out 180° apart; orix issue #236 gives this relabelling as the remedy)."""
    lat = structure.lattice
    if not (abs(lat.alpha - 90) < 1e-6 and abs(lat.gamma - 90) < 1e-6 and abs(lat.beta - 90) > 1e-6):
        return structure
    from diffpy.structure import Lattice, Structure

    new = Structure(lattice=Lattice(lat.c, lat.a, lat.b, 90.0, 90.0, lat.beta))
    for atom in structure:
        moved = type(atom)(atom)
        x, y, z = atom.xyz
        moved.lattice = new.lattice
        moved.xyz = [z, x, y]
        if getattr(atom, "anisotropy", False):  # Uij relabelled with the axes
            moved.U = np.asarray(atom.U, dtype=float)[np.ix_([2, 0, 1], [2, 0, 1])]
        new.append(moved, copy=False)
    return new


#: the CIFs shipped with the package (``stemgrains/simulate/cifs/``, the same as the checkout's ``data_samples/``),
#: by the name a phase argument (``--phase au``) may give instead of a path
BUILTIN_CIFS = ("na_beta2_alumina", "au", "zro2_baddeleyite")


def resolve_cif(cif: str | os.PathLike) -> Path:
    """The CIF file a phase argument names: an existing path as given, else a built-in CIF by name
    (:data:`BUILTIN_CIFS`, with or without ``.cif``; a bare name only, no folder): the copy shipped with the package.
    A file of that name in the working directory wins over the built-in one; a folder of that name does not.
    Every command resolves ``--phase`` through :func:`load_phase`, which calls this.

    Raises
    ------
    FileFormatError
        Neither an existing path nor a built-in name: one line naming the argument, saying a CIF path is expected
        and listing the built-in names.
    """
    if not str(cif).strip():
        raise FileFormatError(f"{cif!r}: expected the path of a CIF file or a built-in phase name "
                              f"({', '.join(BUILTIN_CIFS)}), got an empty name")
    path = Path(cif)
    stem = path.name[:-4] if path.name.lower().endswith(".cif") else path.name
    builtin = path.parent == Path(".") and stem.lower() in BUILTIN_CIFS
    if path.exists() and not (builtin and path.is_dir()):  # a folder named like a built-in phase does not hide it
        return path
    if builtin:
        from importlib.resources import files

        return Path(str(files("stemgrains").joinpath("simulate", "cifs", f"{stem.lower()}.cif")))
    guess = _closest_cif(path, stem)
    raise FileFormatError(f"{cif}: CIF file not found; " + (f"did you mean {guess}? " if guess else "") +
                          f"expected the path of a CIF file or a built-in phase name ({', '.join(BUILTIN_CIFS)})")


#: what users call the built-in phases, for the guess of a --phase that names nothing (never resolved silently)
_COMMON_NAMES = {"gold": "au", "nba": "na_beta2_alumina", "na_beta_alumina": "na_beta2_alumina",
                 "beta_alumina": "na_beta2_alumina", "nab2": "na_beta2_alumina", "zirconia": "zro2_baddeleyite",
                 "baddeleyite": "zro2_baddeleyite", "monoclinic_zirconia": "zro2_baddeleyite"}


def _closest_cif(path: Path, stem: str) -> str | None:
    """What a phase argument that names nothing was most likely meant to be (``difflib``'s closest match, or the
    one name it begins): a built-in name for a bare name (``na_beta2`` → ``na_beta2_alumina``), a CIF file of its
    folder for a path (``data_samples/au.cf`` → ``data_samples/au.cif``); ``None`` where nothing is close."""
    import difflib

    if path.parent == Path("."):
        names = list(BUILTIN_CIFS) + [f.name for f in Path(".").glob("*.cif")]
    else:
        try:
            names = [f.name for f in path.parent.glob("*") if f.suffix.lower() == ".cif"] if path.parent.is_dir() else []
        except OSError:
            names = []
    by_stem = {(n[:-4] if n.lower().endswith(".cif") else n).lower(): n for n in names}
    key = stem.lower().rsplit(".", 1)[0] if "." in stem else stem.lower()  # au.cf: au
    if path.parent == Path(".") and key.replace("-", "_").replace(" ", "_") in _COMMON_NAMES:
        return _COMMON_NAMES[key.replace("-", "_").replace(" ", "_")]
    hits = [n for k, n in by_stem.items() if k.startswith(key) and len(key) >= 2]
    hits = hits or [by_stem[k] for k in difflib.get_close_matches(key, list(by_stem), n=1, cutoff=0.6)]
    if not hits:
        return None
    return hits[0] if path.parent == Path(".") else str(path.parent / hits[0])


def load_phase(cif_path: str | os.PathLike, name: str | None = None) -> Phase:
    """Load a phase from a CIF file.

    Parameters
    ----------
    cif_path
        Path to the CIF, or the name of a built-in CIF (:func:`resolve_cif`: ``"au"``, ``"na_beta2_alumina"``,
        ``"zro2_baddeleyite"``).
    name
        Phase name; default: the file name without extension.

    Returns
    -------
    orix.crystal_map.Phase
        With space group, point group and the symmetry-expanded structure (orix alignment: e1 ∥ a, e3 ∥ c*).
        The CIF text is kept (see :func:`phase_cif_text`) so results files can store it.
    """
    path = resolve_cif(cif_path)
    if path.is_dir():
        raise FileFormatError(f"{path}: is a folder; expected a CIF file (e.g. {path / 'phase.cif'})")
    if not path.is_file():
        raise FileFormatError(f"{path}: CIF file not found")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise FileFormatError(f"{path}: cannot read CIF ({err.strerror})") from None
    return phase_from_cif_text(text, name=name or path.stem, source=str(path))


def phase_cif_text(phase: Phase) -> str:
    """The CIF text of a phase: the original text if it came from a CIF, else a P1 CIF written by diffpy."""
    text = getattr(phase, _CIF_ATTR, None)
    if text:
        return text
    if phase.structure is None or len(phase.structure) == 0:
        return ""
    buf = phase.structure.writeStr(format="cif")
    return buf


def atomic_numbers(structure: Any) -> np.ndarray:
    """Atomic numbers of the atoms of a diffpy ``Structure`` (labels like ``O2-`` or ``Na1`` accepted)."""
    out = np.empty(len(structure), dtype=np.int64)
    for i, atom in enumerate(structure):
        sym = re.sub(r"[^A-Za-z]", "", str(atom.element))
        sym = sym[:1].upper() + sym[1:2].lower() if len(sym) >= 2 else sym.upper()
        if sym not in Z_OF and sym[:1] in Z_OF:
            sym = sym[:1]
        if sym not in Z_OF:
            raise FileFormatError(f"unknown element {atom.element!r} in atom site {i}")
        out[i] = Z_OF[sym]
    return out


def is_hexagonal_like(phase: Phase) -> bool:
    """True for trigonal and hexagonal point groups (those with a unique c axis of order 3 or 6)."""
    pg = phase.point_group
    if pg is None:
        return False
    return pg.system in ("trigonal", "hexagonal")


def has_unique_c_axis(phase: Phase) -> bool:
    """True for every point group but the cubic ones (and a phase without one): its symmetry maps the crystal
    frame's z axis (c* ∥ the basal-plane normal; c for trigonal, hexagonal, tetragonal and orthorhombic cells) onto
    itself or its opposite, so the c-axis *line* of an orientation is defined (its c-axis reliability). For a
    monoclinic phase that line is the unique 2-fold axis: a b-unique CIF is read relabelled to c-unique
    (:func:`phase_from_cif_text`), so there it is the file's b axis; triclinic z is c*."""
    pg = phase.point_group
    return pg is not None and pg.system != "cubic"


#: Phase names taken for Na-β / Na-β″-alumina when a phase carries no atoms (e.g. read from an .ang/.ctf map).
_BETA_NAME = re.compile(r"beta|β", re.IGNORECASE)


def has_conduction_planes(phase: Phase) -> bool:
    """True for a phase with Na⁺ conduction planes: Na-β-alumina or Na-β″-alumina (docs/classification.md §1).

    Such a phase is trigonal/hexagonal (:func:`is_hexagonal_like`; the planes are the basal planes ⟂ c) and
    either its structure holds Na, Al and O, or, for phases without atoms (maps read from .ang/.ctf), its name
    contains "beta" or "β" or is a chemical formula holding Na, Al and O (NaAl11O17). Hexagonal metals (Mg, Ti, Zn), corundum or ZrO₂ have no conduction planes.
    """
    if not is_hexagonal_like(phase):
        return False
    structure = getattr(phase, "structure", None)
    elements = set()
    for atom in structure if structure is not None else []:
        el = "".join(ch for ch in str(getattr(atom, "element", "")) if ch.isalpha())
        if el:
            elements.add(el[:1].upper() + el[1:].lower())
    if {"Na", "Al", "O"} <= elements:
        return True
    name = str(phase.name or "")
    return bool(_BETA_NAME.search(name)) or {"Na", "Al", "O"} <= _formula_elements(name)


#: a chemical formula: element symbols with counts, dots, parentheses and separators only (NaAl11O17, Na2O·5Al2O3)
_FORMULA = re.compile(r"(?:[A-Z][a-z]?[0-9.]*|[()·\s0-9.+-])+")


def _formula_elements(name: str) -> set[str]:
    """The element symbols of ``name`` where it reads as a chemical formula (a map's phase named by its formula,
    as .ang/.ctf files often do), else the empty set."""
    if not _FORMULA.fullmatch(name.strip() or "-"):
        return set()
    return set(re.findall(r"[A-Z][a-z]?", name))


def coerce_phases(phases: Any) -> list[Phase]:
    """A list of orix ``Phase`` objects with structures from one or several phases: CIF paths (loaded with
    :func:`load_phase`), ``Phase`` objects, or a ``PhaseList``.

    Raises
    ------
    ParameterError
        No phase was given, or a phase has no atoms (it must come from a CIF).
    FileFormatError, InputError
        A CIF cannot be read (see :func:`load_phase`).
    """
    if isinstance(phases, (Phase, str, os.PathLike)):
        phases = [phases]
    if isinstance(phases, PhaseList):
        phases = [p for _, p in phases]
    out = []
    for p in phases:
        out.append(load_phase(p) if isinstance(p, (str, os.PathLike)) else p)
    if not out:
        raise ParameterError("phases: give at least one phase (a CIF path or an orix Phase)")
    for p in out:
        if p.structure is None or len(p.structure) == 0:
            raise ParameterError(f"phase {p.name!r} has no atoms: load it from a CIF")
    return out


def write_phases(f: Any, phases: PhaseList | list[Phase] | Phase) -> None:
    """Write phases under ``/phases/<id>`` of an open h5py file (name, space group, point group, CIF text)."""
    if isinstance(phases, Phase):
        items = [(0, phases)]
    elif isinstance(phases, PhaseList):
        items = [(i, p) for i, p in phases if i >= 0]
    else:
        items = list(enumerate(phases))
    if "phases" in f:
        del f["phases"]
    grp = f.create_group("phases")
    for pid, p in items:
        g = grp.create_group(str(pid))
        g.attrs["name"] = p.name
        g.attrs["space_group"] = p.space_group.number if p.space_group is not None else -1
        g.attrs["point_group"] = p.point_group.name if p.point_group is not None else ""
        g.attrs["cif"] = phase_cif_text(p)


def read_phases(f: Any, source: str = "results file") -> PhaseList:
    """Read ``/phases`` written by :func:`write_phases` back into an orix ``PhaseList``."""
    if "phases" not in f:
        raise FileFormatError(f"{source}: no /phases group")
    ids, phases = [], []
    for key in sorted(f["phases"], key=int):
        g = f["phases"][key]
        name = g.attrs.get("name", f"phase{key}")
        cif = g.attrs.get("cif", "")
        if cif:
            p = phase_from_cif_text(cif, name=str(name), source=f"{source}:/phases/{key}")
        else:
            sg = int(g.attrs.get("space_group", -1))
            pg = str(g.attrs.get("point_group", "")) or None
            p = Phase(name=str(name), space_group=sg if sg > 0 else None, point_group=None if sg > 0 else pg)
        ids.append(int(key))
        phases.append(p)
    return PhaseList(phases=phases, ids=ids)
