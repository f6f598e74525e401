"""Crystal phases (CIF → orix Phase), electron scattering factors, reflections, kinematic spots."""

from .phase import (
    BUILTIN_CIFS,
    atomic_numbers,
    coerce_phases,
    has_unique_c_axis,
    is_hexagonal_like,
    has_conduction_planes,
    load_phase,
    phase_cif_text,
    phase_from_cif_text,
    read_phases,
    resolve_cif,
    write_phases,
)
from .phase import __all__ as _phase_names
from .scattering import Reflections, electron_scattering_factor, excitation_error, reciprocal_basis, reflections
from .scattering import __all__ as _scattering_names
from .spots import SpotPattern, kinematic_spots

__all__ = [
    *_phase_names,
    *_scattering_names,
    "SpotPattern",
    "kinematic_spots",
]
