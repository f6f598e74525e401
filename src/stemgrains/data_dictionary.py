"""Data dictionary: unit and definition of every column and array stemgrains writes.

One source for three things: the ``unit`` and ``description`` attributes of every dataset in a results file
(:func:`annotate_units`, run by every results-file writer), the CSV tables (``boundaries.csv``,
``segments.csv``, ``segment --csv``) and ``docs/data-dictionary.md`` (:func:`render_tables`, with the config keys by
:mod:`stemgrains.dictionary_page`; a test keeps the page equal to it). Frames and conventions: docs/conventions.md; the classification quantities:
docs/classification.md.

Units: ``deg`` degrees, ``nm`` nanometres, ``px`` scan pixels, ``V`` volts, ``σ_ip`` the in-plane
conductivity of the conducting phase (the transport model is dimensionless in it), ``1`` dimensionless,
``—`` a label, id or flag. Vector columns are written to HDF5 as ``(n, k)`` arrays and to CSV as ``name_0`` …
``name_{k-1}``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GROUPS", "BATCH_SUMMARY", "describe", "annotate_units", "render_tables"]

_FRAME = "sample frame (x right along scan columns, y down along rows)"

# Definitions shared by several tables ------------------------------------------------------------------
_C: dict[str, tuple[str, str]] = {
    "boundary_id": ("—", "row id of the boundary (one per pair of touching grains) in /boundaries/boundaries"),
    "segment_id": ("—", "row id of the straight boundary segment in /boundaries/segments"),
    "grain_a": ("—", "grain A of the boundary: the smaller of the two grain labels"),
    "grain_b": ("—", "grain B of the boundary: the larger grain label"),
    "length_nm": ("nm", "boundary length: pixel-edge midpoint polyline × scan step"),
    "normal": ("1", f"unit in-plane boundary normal (x, y) pointing from grain A into grain B, {_FRAME}"),
    "trace_angle_deg": ("deg", "in-plane boundary trace direction t = ẑ × n, angle from +x toward +y, in (−90, 90]"),
    "n_pixel_pairs": ("—", "number of 4-connected A|B pixel pairs (pixel edges) on it"),
    "misorientation_deg": ("deg", "disorientation angle of grain B relative to grain A (Laue-group symmetry), "
                                  "from the grains' mean orientations"),
    "misorientation_axis": ("1", "unit disorientation axis, Cartesian crystal frame (orix: e1 ∥ a, e3 ∥ c for "
                                 "hexagonal/trigonal; the axis has the same coordinates in the crystal frames of "
                                 "A and B), reduced into the fundamental sector of the proper Laue group"),
    "csl_sigma": ("—", "CSL Σ within the Brandon criterion 15°/√Σ; 0 = none"),
    "special": ("—", "name of the matching user-defined special misorientation (--special; names are unique), "
                     "empty if none; a boundary within the tolerance of several has the closest one's name (ties: "
                     "the first given), so the specials' counts never overlap"),
    "field": ("1", f"unit in-plane field direction (x, y) used, {_FRAME}; NaN where a run had no field to use (no "
              "conducting phase, no --field)"),
    "conducting": ("—", "true when both grains are in a phase with Na⁺ conduction planes (classified)"),
    "theta_3d": ("deg", "angle between the two grains' conduction planes, arccos|c_A·c_B|, 0–90"),
    "theta_2d": ("deg", "angle between the two grains' conduction-plane traces (Na⁺ transport-path "
                        "misorientation), arccos|d_A·d_B|, 0–90; NaN when either grain is flat"),
    "alpha_a": ("deg", "grain A's conduction-plane inclination to the lamella surface, arccos|c_z|, "
                       "0 flat – 90 edge-on"),
    "alpha_b": ("deg", "as alpha_a, grain B"),
    "phi_a": ("deg", "angle between grain A's trace and the boundary trace, arccos|d_A·t|, 0–90; 90 when A is flat"),
    "phi_b": ("deg", "as phi_a, grain B"),
    "psi": ("deg", "angle between the field and the boundary normal, arccos|E·n|, 0–90; NaN without a field"),
    "acc": ("σ_ip", "net Na⁺ arrival (Σ_A t⁺ − Σ_B t⁺)·n under a unit field along the oriented boundary "
                    "trace t⁺; decides the Type III letter (a if > 0)"),
    "label": ("—", "classification label 'Type letter index', e.g. 'III a2'; 'other-phase' when a grain is "
                   "not conducting"),
    "type": ("—", "I (parallel planes), II (perpendicular) or III (oblique); empty for other-phase"),
    "letter": ("—", "a or b (docs/classification.md §4); empty for other-phase"),
    "field_index": ("—", "1: field mainly across the boundary (psi ≤ 45°); 2: mainly along it; 0 for other-phase"),
    "behaviour": ("—", "parallel, transmitting, blocking, depleting or other-phase (docs/classification.md §5)"),
    "j_a": ("σ_ip", "Na⁺ flux of grain A toward the boundary, (Σ_A E)·n per unit |E| (> 0: toward it)"),
    "j_b": ("σ_ip", "Na⁺ flux of grain B away from the boundary, (Σ_B E)·n per unit |E| (> 0: into B)"),
    "r": ("1", "normalised net accumulation (J_A − J_B)/max(|J_A|, |J_B|, tau_flow), −2…2 "
               "(> 0: Na⁺ piles up, < 0: depletion)"),
    "c_axis_reliability": ("1", "the smaller of the two grains' median_c_axis_reliability: below 5 the label rests "
                                "on a c axis the patterns of a grain do not fix (another c axis explains them nearly "
                                "as well); NaN where a grain has none (cubic phase, a map without it)"),
}


def _pick(*names: str, **extra: tuple[str, str]) -> dict[str, tuple[str, str]]:
    out = {n: _C[n] for n in names}
    out.update(extra)
    return out


_TRANSPORT_B = dict(
    n_faces=("—", "pixel faces of the boundary in the transport grid"),
    current=("σ_ip·V", "current through the boundary from A to B, per unit lamella thickness "
                       "(× σ_ip [S/m] × thickness [m] = A)"),
    mismatch_mean=("σ_ip·V/nm", "mean over its faces of J_A·n − J_B·n (pixel-centre current densities; "
                                "> 0: more current arrives from A than leaves into B)"),
    mismatch_abs_mean=("σ_ip·V/nm", "mean of |J_A·n − J_B·n| over its faces"),
    field=("V/nm", f"mean field E = −∇φ (x, y) on the boundary's pixels, {_FRAME}; NaN where no current flows"),
)

#: Group path in the results file → column/array name → (unit, definition).
GROUPS: dict[str, dict[str, tuple[str, str]]] = {
    "orientation": {
        "quaternions": ("1", "(ny, nx, 4) orientation, unit quaternion (scalar first) mapping sample- to crystal-"
                             "frame vectors (orix convention)"),
        "phase_id": ("—", "(ny, nx) phase id in /phases; −1 = not indexed"),
        "correlation_index": ("1", "(ny, nx) cosine of the solution's template and the processed pattern over the "
                                   "template's spots and the detected spots it leaves unexplained, 0–1"),
        "reliability": ("1", "(ny, nx) R = 100·(1 − Q2/Q1), Q = image score × ((explained + 1)/(detected + 1)) "
                             "(index fit_score_power), Q2 the best refined hypothesis > 5° away (Laue symmetry), the "
                             "beam twin and, for trigonal/hexagonal phases, the 60° turn about c included; at most "
                             "the same R over the image scores alone; × clip((b − 0.5)/0.4, 0, 1), b the spot fit "
                             "beyond chance (index reliability_fit_range), 0–100"),
        "grain_reliability": ("1", "(ny, nx) the reliability once the grain has decided what its patterns cannot: "
                                   "max(reliability, 100·(b − a)/(a + b)) where the pixel holds the solution its "
                                   "group of the grain vote decided (b of the group's pixels hold it, a others; b > "
                                   "60 % and b − a > 2·√(n̄·(a + b)), n̄ the mean n_summed: the sign test on "
                                   "patterns with independent noise), else reliability; 100 where the whole group "
                                   "agrees: the grain is consistent, not the model proven right. Only on maps "
                                   "indexed with the grain vote (index grain_vote), 0–100"),
        "twin_reliability": ("1", "(ny, nx) the same against the beam twin O ∘ Rz(180°) alone; 100 where the twin is "
                                  "symmetry-equivalent, 0–100"),
        "c_axis_reliability": ("1", "(ny, nx) the same R over the hypotheses whose c axis (crystal z, the basal-plane "
                                    "normal) lies > 5° from the solution's as a line, also after a change of sign of "
                                    "its beam component: how reliable the basal planes' trace and inclination are, "
                                    "all the conduction-plane classification uses (the beam twin and the 60° turn "
                                    "about c leave them unchanged); NaN for cubic phases, 0 where not indexed "
                                    "(as reliability), 0–100"),
        "model_spread_deg": ("deg", "(ny, nx) how far the solution moves when refined again on its pattern at each "
                                    "other relrod width of 0.015, 0.01, 0.007 1/Å (the widths the σ_s and final-"
                                    "refinement choices consider): the largest disorientation. Small where the spots "
                                    "fix the orientation; degrees where only the intensities fix its tilt: how much "
                                    "the answer depends on the relrod width, which R does not see (a sensitivity, "
                                    "not an error: the width the data call for can still give the right tilt); NaN "
                                    "where not indexed"),
        "spot_fit_fraction": ("1", "(ny, nx) fraction of the detected spots within 0.02 + 0.02·|q| 1/Å of a spot the "
                                   "solution predicts (|excitation error| ≤ 0.05 1/Å), 0–1"),
        "spot_fit_chance": ("1", "(ny, nx) fraction of randomly placed spots the same solution would explain (chance "
                                 "level of spot_fit_fraction), 0–1"),
        "spot_fit_residual": ("1/Å", "(ny, nx) RMS distance of the explained spots to the predicted ones"),
        "spot_fit_n_peaks": ("—", "(ny, nx) the spots spot_fit_fraction counts: those above the detection threshold "
                                  "([spots] n_sigma); n_peaks also holds the weaker spots a sparse pattern took for "
                                  "the search ([spots] min_spots); the phase-fit check judges only patterns with at "
                                  "least 4"),
        "phase_reliability": ("1", "(ny, nx) the same between the best solutions of the two best phases, 0–100"),
        "grain_vote": ("—", "(ny, nx) 1 where the pixel took its grain's majority solution among its near-tied "
                            "hypotheses (index grain_vote; its reliability, twin and c-axis reliability are then 0), "
                            "else 0"),
        "candidate_scores": ("1", "(ny, nx, k) image scores of the distinct hypotheses (> 0.5 library step apart), "
                                  "best first"),
        "candidate_quaternions": ("1", "their orientations: only in the map index_orientations returns (prop, (n, k·4)); "
                                       "not written to results.h5, where this name would hold several orientations "
                                       "per pixel (orix rotations_per_point)"),
        "n_peaks": ("—", "(ny, nx) diffraction spots found in the pattern as indexed (summed with its similar "
                         "neighbours, index neighbor_average_radius)"),
        "n_summed": ("—", "(ny, nx) patterns summed into the pattern indexed at the position: itself and its similar "
                          "neighbours (index neighbor_average_radius; 1 = the pattern alone)"),
        "center_row": ("px (detector)", "(ny, nx) direct-beam centre row on the detector"),
        "center_col": ("px (detector)", "(ny, nx) direct-beam centre column on the detector"),
        # properties of maps read from vendor files, kept as the file gives them (orix names)
        "ind": ("1", "(ny, nx) ASTAR .ang: template-matching index of the solution, as in the file"),
        "rel": ("1", "(ny, nx) ASTAR .ang: reliability, 0–1, as in the file"),
        "relx100": ("1", "(ny, nx) ASTAR .ang: reliability × 100"),
        "iq": ("1", "(ny, nx) EDAX .ang: image (pattern) quality, as in the file"),
        "ci": ("1", "(ny, nx) EDAX .ang: confidence index, −1–1"),
        "dp": ("1", "(ny, nx) EDAX .ang: dot product of the dictionary-indexing match"),
        "fit": ("deg", "(ny, nx) EDAX .ang: fit of the Hough solution"),
        "detector_signal": ("1", "(ny, nx) EDAX .ang: detector intensity"),
        "bands": ("—", "(ny, nx) Oxford .ctf: number of detected Kikuchi bands"),
        "error": ("—", "(ny, nx) Oxford .ctf: indexing error code (0 = success)"),
        "MAD": ("deg", "(ny, nx) Oxford .ctf: mean angular deviation"),
        "BC": ("1", "(ny, nx) Oxford .ctf: band contrast, 0–255"),
        "BS": ("1", "(ny, nx) Oxford .ctf: band slope, 0–255"),
    },
    "grains": {
        "labels": ("—", "(ny, nx) grain label of every pixel; 0 = unassigned"),
    },
    "grains/table": {
        "id": ("—", "grain label (≥ 1)"),
        "phase_id": ("—", "phase id in /phases"),
        "area_px": ("px", "grain area in pixels"),
        "area_nm2": ("nm²", "grain area"),
        "n_valid_px": ("px", "pixels of the grain with a valid orientation (used for the mean)"),
        "equivalent_diameter_nm": ("nm", "diameter of the disc of the same area"),
        "centroid_row": ("px", "centroid row (y / scan step)"),
        "centroid_col": ("px", "centroid column (x / scan step)"),
        "mean_quaternion": ("1", "(n, 4) symmetry-aware mean orientation, orix convention"),
        "orientation_spread_deg": ("deg", "mean disorientation of the grain's pixels from its mean orientation"),
        "c_axis": ("1", f"(n, 3) conduction-plane normal (crystal c) in the {_FRAME}, z along the beam; "
                        "NaN for phases that are not trigonal/hexagonal"),
        "alpha_deg": ("deg", "angle between the conduction planes and the lamella surface, 0 flat – 90 edge-on"),
        "trace_angle_deg": ("deg", "in-plane direction of the conduction-plane trace, from +x toward +y, "
                                   "(−90, 90]; NaN when flat"),
        "median_reliability": ("1", "median reliability of the grain's valid pixels (maps with a reliability: "
                                    "indexed by stemgrains, or imported with one)"),
        "median_c_axis_reliability": ("1", "median c-axis reliability of the grain's valid pixels (maps indexed by "
                                           "stemgrains; NaN for cubic phases)"),
        "median_grain_reliability": ("1", "median grain reliability of the grain's valid pixels (maps indexed by "
                                          "stemgrains with the grain vote): ≥ 5 where its orientation is decided, "
                                          "by its patterns or by the grain's significant vote"),
    },
    "boundaries/boundaries": _pick(
        "boundary_id", "grain_a", "grain_b", "length_nm", "normal", "trace_angle_deg", "n_pixel_pairs",
        "misorientation_deg", "misorientation_axis",
        phase_a=("—", "phase id of grain A"),
        phase_b=("—", "phase id of grain B"),
        n_segments=("—", "straight segments of the boundary"),
        axis_uvw=("—", "disorientation axis as crystal direction indices: [UVTW] (n, 4) for hexagonal/trigonal "
                       "phases, [uvw] (n, 3, NaN-padded to 4) otherwise; rounded to the closest indices ≤ 12 (orix "
                       "Miller.round) for display: for long cells (Na-β″, c/a ≈ 6) the direction can be ~10° from "
                       "misorientation_axis, which is exact — use that to compute or to define a --special axis"),
        low_angle=("—", "disorientation below low_angle_deg (default 15°)"),
        csl_sigma=_C["csl_sigma"],
        csl_deviation_deg=("deg", "deviation from that CSL misorientation; NaN when none"),
        special=_C["special"],
        special_deviation_deg=("deg", "deviation from it; NaN when none"),
        pixel_misorientation_deg=("deg", "mean disorientation across the boundary's pixel pairs (pixel "
                                         "orientations, not grain means)"),
    ),
    "boundaries/segments": _pick(
        "segment_id", "boundary_id", "grain_a", "grain_b", "n_pixel_pairs", "length_nm", "normal",
        "trace_angle_deg",
        start=("px", "(n, 2) segment start (x, y) in pixel coordinates (pixel centres at integers)"),
        end=("px", "(n, 2) segment end (x, y)"),
        centre=("px", "(n, 2) centroid (x, y) of the segment's pixel-edge midpoints"),
        chain_id=("—", "chain of pixel edges (between triple junctions/map border) the segment belongs to"),
    ),
    "boundaries/pairs": _pick(
        "segment_id", "boundary_id",
        row_a=("px", "row of the pixel in grain A"), col_a=("px", "column of the pixel in grain A"),
        row_b=("px", "row of the neighbouring pixel in grain B"), col_b=("px", "column of that pixel"),
        length_px=("px", "length share of this pixel edge in its segment"),
    ),
    "boundaries/triple_junctions": {
        "row": ("px", "row of the pixel corner where ≥ 3 grains meet (half-integer)"),
        "col": ("px", "column of that corner (half-integer)"),
        "grains": ("—", "(n, 4) grain ids meeting there, ascending, 0-padded"),
        "n_grains": ("—", "number of grains meeting there"),
    },
    "classification/segments": _pick(
        "segment_id", "boundary_id", "grain_a", "grain_b", "length_nm", "trace_angle_deg", "normal", "field",
        "misorientation_deg", "misorientation_axis", "csl_sigma", "special", "conducting", "theta_3d", "theta_2d",
        "alpha_a", "alpha_b", "phi_a", "phi_b", "psi", "acc", "label", "type", "letter", "field_index", "behaviour", "j_a", "j_b", "r",
        "c_axis_reliability",
    ),
    "classification/boundaries": _pick(
        "boundary_id", "grain_a", "grain_b", "length_nm", "trace_angle_deg", "misorientation_deg",
        "misorientation_axis", "csl_sigma", "special", "conducting", "theta_3d", "theta_2d", "alpha_a", "alpha_b", "phi_a", "phi_b",
        "psi", "type", "letter", "field_index", "j_a", "j_b", "r",
        n_segments=("—", "straight segments of the boundary"),
        normal=("1", "length-weighted mean unit normal of its segments (from A into B)"),
        field=("1", "length-weighted mean unit field direction of its segments"),
        label=("—", "label covering the largest length of the boundary (see the segment table)"),
        behaviour=("—", "behaviour covering the largest length of the boundary"),
        label_fraction=("1", "length fraction of the boundary carrying that label"),
        c_axis_reliability=_C["c_axis_reliability"],
    ),
    "transport": {
        "potential": ("V", "(ny, nx) potential φ at pixel centres; NaN on blocking pixels and floating regions"),
        "node_potential": ("V", "(ny+1, nx+1) potential at pixel corners (finite-element nodes)"),
        "field": ("V/nm", "(ny, nx, 2) field E = −∇φ (x, y) at pixel centres"),
        "current_density": ("σ_ip·V/nm", "(ny, nx, 2) current density J = Σ E (x, y)"),
        "sigma": ("σ_ip", "(ny, nx, 3) in-plane conductivity tensor (σ_xx, σ_xy, σ_yy) of each pixel"),
        "labels": ("—", "(ny, nx) grain labels on the transport grid (0 outside grains)"),
        "region": ("—", "(ny, nx) 0 blocking, 1 grain, 2 frame, 3 unassigned"),
        "floating": ("—", "(ny, nx) conducting pixels connected to no electrode"),
    },
    "transport/electrodes": {
        "name": ("—", "electrode (left, right, top, bottom or mask)"),
        "potential_V": ("V", "applied potential"),
        "current": ("σ_ip·V", "current from the electrode into the sample, per unit lamella thickness"),
        "n_nodes": ("—", "grid nodes held at that potential"),
    },
    "transport/faces": {
        "row_a": ("px", "row of the pixel in grain A"), "col_a": ("px", "its column"),
        "row_b": ("px", "row of the pixel in grain B"), "col_b": ("px", "its column"),
        "grain_a": _C["grain_a"], "grain_b": _C["grain_b"],
        "normal": _C["normal"],
        "current": ("σ_ip·V", "current through the face from A to B, per unit lamella thickness"),
        "mismatch": ("σ_ip·V/nm", "J_A·n − J_B·n with the two pixels' current densities"),
        "field": ("V/nm", "(n, 2) mean field of the two pixels"),
    },
    "transport/boundaries": dict(_pick("boundary_id", "grain_a", "grain_b", "length_nm"), **_TRANSPORT_B),
    "transport/segments": dict(_pick("segment_id", "boundary_id", "grain_a", "grain_b", "length_nm"), **_TRANSPORT_B),
    # compare.h5 of `stemgrains compare` (a file of its own; scan 1's grid and sample frame throughout)
    "compare": {
        "series_labels": ("—", "(n_scans, ny, nx) series id of every pixel of each scan registered onto scan 1's "
                               "grid; 0 unassigned or not covered"),
        "covered": ("—", "(n_scans, ny, nx) scan 1's pixels that each scan covers after registration"),
    },
    "compare/registration": {
        "scan": ("—", "scan number (1 = the reference)"),
        "rotation": ("—", "turn of the scan grid applied first: none, rot90, rot180, rot270 (numpy.rot90 quarter "
                          "turns, counter-clockwise as displayed), flip+… (rows reversed first: specimen turned over)"),
        "quarter_turns": ("—", "number of those quarter turns, 0–3"),
        "flip": ("—", "rows reversed before the turn"),
        "shift_row": ("px", "scan-1 pixel (r, c) is the re-gridded scan's pixel (r + shift_row, c + shift_col) "
                            "(with angle_deg 0)"),
        "shift_col": ("px", "column part of that shift"),
        "angle_deg": ("deg", "small rotation of the re-gridded scan's content relative to scan 1 (from +x toward "
                             "+y, about scan 1's centre c): scan-1 pixel p is at c + R(angle)·(p + shift − c); 0 "
                             "unless searched (--max-angle) or given (--angle)"),
        "score": ("1", "mean masked normalised cross-correlation of the IPF-x/y/z colours at the placement, −1–1; "
                       "NaN when given"),
        "runner_up": ("1", "pixels agreeing in orientation under the best other candidate placement, as a "
                           "fraction of those under the kept one (0 unrivalled, near 1 ambiguous); NaN when given"),
        "overlap_px": ("px", "scan-1 pixels indexed in both scans after registration"),
        "agreement": ("1", "fraction of those whose orientations agree within the grain threshold "
                           "(disorientation, Laue group)"),
        "given": ("—", "the placement was given (--shift), not estimated"),
    },
    "compare/grains": {
        "series_id": ("—", "one id per physical grain across the series (scan 1's grain label; new grains get the "
                           "next free ids)"),
        "scan_from": ("—", "scan j of the comparison j → k = j + 1"),
        "scan_to": ("—", "scan k"),
        "grain_from": ("—", "grain label in scan j; 0 when the grain is only in scan k"),
        "grain_to": ("—", "grain label in scan k; 0 when the grain is only in scan j"),
        "status": ("—", "matched, vanished, appeared, merged (into partner), split (off partner), edge (cut by the "
                        "border of the common field of view to fewer than min_grain_size px: not compared), outside "
                        "(no pixel in the common field of view)"),
        "partner_series_id": ("—", "for merged/split: the matched grain it merged into / split off; −1 otherwise"),
        "phase": ("—", "phase name"),
        "iou": ("1", "intersection over union of the two grains over the common field of view"),
        "overlap_px": ("px", "pixels the two grains share"),
        "disorientation_deg": ("deg", "disorientation between the grain's mean orientations in scans j and k "
                                      "(Laue group; scan k's orientations in scan 1's sample frame)"),
        "c_axis_tilt_deg": ("deg", "angle between the grain's c axes in scans j and k, 0–90; NaN for phases that "
                                   "are not trigonal/hexagonal"),
        "centroid_shift_nm": ("nm", "distance between the grain's centroids over the common field of view"),
        "dx_nm": ("nm", "x part of the centroid shift (scan 1's frame)"),
        "dy_nm": ("nm", "y part of the centroid shift"),
        "area_from_nm2": ("nm²", "grain area in scan j within the common field of view"),
        "area_to_nm2": ("nm²", "grain area in scan k within the common field of view"),
        "area_change_nm2": ("nm²", "area_to_nm2 − area_from_nm2"),
    },
    "compare/boundaries": {
        "series_grain_a": ("—", "series id of one grain of the boundary (the smaller)"),
        "series_grain_b": ("—", "series id of the other grain"),
        "scan_from": ("—", "scan j"),
        "scan_to": ("—", "scan k = j + 1"),
        "boundary_from": ("—", "boundary_id in scan j's /boundaries; −1 when absent"),
        "boundary_to": ("—", "boundary_id in scan k's /boundaries; −1 when absent"),
        "status": ("—", "appeared, vanished, outside (not in the common field of view), or the changes joined by "
                        "';' (moved, label-changed, behaviour-changed, partly-outside), else unchanged"),
        "moved": ("—", "trace_distance_nm above move_tolerance_px × scan step"),
        "label_changed": ("—", "the classification label carried by most of its pixel pairs in the common field "
                               "of view differs"),
        "behaviour_changed": ("—", "the behaviour carried by most of its pixel pairs there differs"),
        "partly_outside": ("—", "cut by the border of the common field of view (some of its pixel pairs outside it "
                                "in either scan, or a grain of it at the edge): label and behaviour not compared, "
                                "each scan classified another extent of it"),
        "trace_distance_nm": ("nm", "symmetric mean nearest-neighbour distance between the boundary's traces "
                                    "(pixel-pair midpoints in the common field of view) in scans j and k"),
        "n_pairs_from": ("—", "its pixel pairs in the common field of view, scan j"),
        "n_pairs_to": ("—", "the same in scan k"),
        "misorientation_from_deg": ("deg", "its misorientation (disorientation angle) in scan j"),
        "misorientation_to_deg": ("deg", "the same in scan k"),
        "label_from": ("—", "label in scan j (empty without a classification)"),
        "label_to": ("—", "label in scan k"),
        "behaviour_from": ("—", "behaviour in scan j (empty without a classification)"),
        "behaviour_to": ("—", "behaviour in scan k"),
    },
    # series.h5 of `stemgrains series` (a file of its own; frame-0 pixel grid, map frame in nm)
    "series": {
        "registered": ("—", "(n, rows, cols) frames (in their own intensity unit) moved onto frame 0 by their drift "
                            "(bilinear), float32; "
                                 "NaN where a frame has no data"),
        "differential": ("—", "(n, rows, cols) registered frame k − frame 0 (frame intensity unit), float32"),
        "drift_px": ("px", "(n, 2) drift of each frame relative to frame 0 in frame pixels: column 0 along rows "
                           "(down), column 1 along columns (right); frame k's content sits that much further along "
                           "than in frame 0 (frame 0: 0, 0)"),
        "times": ("—", "(n,) time of each frame as given by --times (its unit), else the frame index"),
        "region": ("—", "(rows, cols) frame-0 pixels searched for events: on the map and with data in every "
                        "frame kept (not doubtful)"),
        "footprints": ("—", "(rows, cols) event_id + 1 over each event's footprint in frame 0's pixels, 0 "
                            "elsewhere"),
    },
    "series/registration": {
        "peak_ncc": ("1", "(n,) masked normalised cross-correlation (Padfield 2012) of frame k with frame 0 over "
                          "their unchanged pixels at the integer part of the drift, −1–1 (frame 0: 1)"),
        "peak_ratio": ("1", "(n,) peak_ncc over the highest other local maximum of the masked NCC more than 2 px "
                            "away; inf when none is positive, near 1 ambiguous"),
        "masked_fraction": ("1", "(n,) fraction of frame 0's pixels left out of the registration as changed in "
                                 "frame k"),
        "iterations": ("—", "(n,) mask / re-register rounds used for the kept start"),
        "doubtful": ("—", "(n,) true when the registration of frame k is doubtful (peak ratio < 1.1, NCC < 0.3 "
                          "or far below the other frames', more than half the field changed, no convergence, or "
                          "a drift that jumps away from the last good frame in time); such frames are left out "
                          "of events and enrichment (parameters frames_left_out) and named in the attribute "
                          "warnings"),
    },
    "series/events": {
        "event_id": ("—", "row id of the event"),
        "first_frame": ("—", "first frame the feature is seen in (index into the frames; never a doubtful one)"),
        "time": ("—", "times[first_frame] (the unit of --times, else frame index)"),
        "x_nm": ("nm", "event centroid on the map, x along scan columns, map frame"),
        "y_nm": ("nm", "event centroid on the map, y along scan rows"),
        "area_nm2": ("nm²", "footprint area in its last frame"),
        "contrast": ("1", "mean differential image over the footprint in its last frame ÷ the median level of "
                          "frame 0 (negative: darker)"),
        "site": ("—", "boundary, triple_junction, interior, interface or edge"),
        "boundary_id": ("—", "boundary (row of /boundaries/boundaries of RESULTS.h5) of a boundary event; −1 "
                             "otherwise"),
        "grain_a": ("—", "grain A of that boundary, or the grain an interior event lies in; −1 otherwise"),
        "grain_b": ("—", "grain B of that boundary; −1 otherwise"),
        "label": ("—", "classification label of that boundary segment; empty otherwise"),
        "behaviour": ("—", "behaviour of that boundary segment; empty otherwise"),
        "distance_nm": ("nm", "distance to the attributed site (interior: to the nearest boundary)"),
        "boundaries_reached": ("—", "ids of every boundary the event's footprint (all its frames) comes within "
                                    "--tolerance of, space-separated: where a filament grew, beyond the site it "
                                    "started at"),
    },
    "series/enrichment": {
        "level": ("—", "label, behaviour, site or interface"),
        "name": ("—", "the label, behaviour, site kind or interface plane class of the row"),
        "length_nm": ("nm", "boundary (interface) length of that class; NaN for site rows"),
        "length_fraction": ("1", "that length over the whole boundary (interface) length"),
        "observed": ("—", "events attributed to it (doubtful frames left out)"),
        "expected": ("—", "boundary (interface) events × length_fraction: a uniform distribution along the "
                          "length"),
        "ratio": ("1", "observed / expected"),
        "p_value": ("1", "exact two-sided binomial test of observed (scipy.stats.binomtest)"),
    },
}

#: Keys of summary.json (written by `stemgrains run`).
SUMMARY: dict[str, tuple[str, str]] = {
    "input": ("—", "path of the 4D-STEM data"),
    "scan_shape": ("px", "[ny, nx] scan shape"),
    "detector_shape": ("px", "[rows, cols] of the detector (given with --calibration to a scan on another "
                             "detector, the file's pixel size and centre get a note)"),
    "calibration": ("1/Å, kV, nm", "the calibration the run used: q_pixel_size, accelerating_voltage_kV, scan_step_nm, "
                                   "center [row, col] px (null: found per pattern), q_rotation_deg, q_flip, "
                                   "ellipticity [ratio, angle deg], affine [A11, A12, A21, A22] (null: unset) "
                                   "and origin (per field: file, command line, config, 'calibration file PATH' (--calibration), "
                                   "override (Python API), default; 'fitted (METHOD)' for the values an --auto-calibrate fit changed; also the attribute "
                                   "origin of /calibration in results.h5, JSON); "
                                   "run and index print a note where the voltage or scan step is a default; notes "
                                   "(present where one applies): lines run and index print about the calibration, e.g. "
                                   "a --calibration pixel size fitted or given at another voltage"),
    "indexed_fraction": ("1", "fraction of scan pixels with an orientation"),
    "median_correlation_index": ("1", "median correlation index of the indexed pixels"),
    "median_reliability": ("1", "median reliability of the indexed pixels"),
    "median_n_summed": ("—", "median over the map of the patterns summed per position (/orientation/n_summed; 1 = "
                             "no neighbour summation); absent for maps without it"),
    "grain_vote_fraction": ("1", "fraction of the map's pixels that took their grain's majority solution among "
                                 "near-tied hypotheses (/orientation/grain_vote); absent for maps without it"),
    "reliable_fraction": ("1", "fraction of the map's pixels with reliability ≥ 5"),
    "invalid_pixels": ("—", "what the grains leave out: n_invalid (pixels not indexed, or below [grains] "
                            "min_reliability / min_correlation), n_pixels, cuts (e.g. \"grain_reliability < 5\"; "
                            "empty without a cut), n_unassigned (pixels in no grain: invalid, or in grains of fewer "
                            "than min_grain_size px) and min_grain_size"),
    "grain_reliable_fraction": ("1", "fraction of the map's pixels with grain_reliability ≥ 5 (reliable, or holding "
                                     "the solution their grain decided significantly); absent for maps without it"),
    "excitation_error_sigma": ("1/Å", "relrod width σ_s of the kinematic model the indexing used (chosen from the "
                                      "data unless [index] excitation_error_sigma set it; also /parameters index)"),
    "excitation_error_sigma_source": ("—", "how σ_s was obtained: 'chosen from the data', 'set', \"the libraries'\", "
                                           "'the default: fewer than 64 patterns to choose from' or 'the default: no subsample pattern was indexed with reliability ≥ 5 under any candidate width' (also /parameters "
                                           "index)"),
    "excitation_error_sigma_confident": ("1", "where σ_s was chosen from the data: per candidate width (1/Å, as text) "
                                              "the fraction of the ~128-position subsample indexed with reliability "
                                              "≥ 5 (also /parameters index)"),
    "refine_excitation_error_sigma": ("1/Å", "relrod width of the final refinement of each solution (equal to "
                                             "excitation_error_sigma: none; absent where turned off; chosen from the data unless [index] "
                                             "refine_excitation_error_sigma set it; also /parameters index)"),
    "refine_excitation_error_sigma_source": ("—", "how the final refinement's width was obtained: 'chosen from the "
                                                  "data', 'set', \"the search's: no pattern of the subsample indexed\", \"the search's: fewer than 64 patterns to choose "
                                                  "from\", \"the search's: no candidate narrower than σ_s\", \"the search's: the set width W 1/Å is wider "
                                                  "than σ_s S 1/Å, not applied\" or "
                                                  "'off' ([index] final_refinement false; also /parameters index)"),
    "refine_excitation_error_sigma_votes": ("patterns", "where the final refinement's width was chosen from the "
                                                        "data: per width tried (1/Å, as text) the ~128-position "
                                                        "subsample's indexed patterns whose refined image score is "
                                                        "highest at that width; a narrower width is taken where the "
                                                        "narrower widths' votes b and σ_s's a give b − a > "
                                                        "3·√(a + b) (sign test), the most voted of them "
                                                        "(also /parameters index)"),
    "grain_decisions_withdrawn": ("grains", "significant grain-vote decisions withdrawn because they did not hold "
                                            "at the final refinement's relrod width (more than 60 % of up to 32 "
                                            "of the group's pixels must still prefer the decided solution to "
                                            "their best listed rival there); their pixels' grain_reliability is "
                                            "their reliability; 0 where the final refinement keeps σ_s; absent "
                                            "without the grain vote (also /parameters index)"),
    "phase_fit": ("1", "the phase-fit check: per phase the patterns indexed as it (n_indexed) and judged by the "
                       "check (n_judged: at least 4 spots above the detection threshold), the median spot fit beyond "
                       "chance, the poorly explained fraction and largest region, the fraction judged with "
                       "reliability >= 5 (reliable_fraction), ok, and the warnings (also the JSON "
                       "attribute phase_fit of /orientation)"),
    "n_grains": ("—", "grains"),
    "n_boundaries": ("—", "boundaries (grain pairs)"),
    "field_source": ("—", "'applied' (--field), the transport model's local field, or none where no phase conducts "
                          "(the classification does not apply; a --field given is not used), or '+x, assumed (...)' "
                          "where electrodes drive no current and no --field was given (the tables are under +x)"),
    "misorientation": ("deg, 1", "what every map has: median misorientation angle of the boundaries (median_deg), "
                                 "the low-angle limit (low_angle_deg) and length fraction below it, and the length "
                                 "fraction per CSL Σ within Brandon's criterion (csl_length_fraction, by Σ ≥ 3)"),
    "classification": ("nm, 1", "applies (a conducting phase is in the map), conducting_phases (names), note (where "
                                "it does not apply: every boundary is other-phase), warning (where the phase-fit "
                                "check failed: the labels may be meaningless), the boundary length (nm) and "
                                "length fraction per label and per behaviour, and from maps with a c-axis reliability "
                                "c_axis_reliability_cut (5), c_axis_judged_length_nm (segments whose two grains have "
                                "one) and c_axis_uncertain_fraction (the share of that length below the cut: labels "
                                "resting on a c axis another hypothesis explains nearly as well; null where nothing "
                                "is judged)"),
    "special": ("—, nm, 1", "per special misorientation of --special / [grains] special (by name): n_boundaries, "
                            "length_nm and length_fraction (of the whole boundary length) of the boundaries matching "
                            "it (column special of boundaries.csv: each boundary under its closest special only); {} "
                            "without any"),
    "transport_total_current": ("σ_ip·V", "current driven through the lamella, per unit lamella thickness "
                                          "(× σ_ip [S/m] × thickness [m] = A)"),
    "transport_total_current_unit": ("—", "that unit, spelled out"),
    "transport_unassigned": ("—", "how the transport model took the pixels in no grain: \"gb\" (boundary material, "
                                  "σ_gb), \"pore\" (no current) or a conductivity (σ_ip units); [transport] unassigned"),
    "transport_note": ("—", "only where the transport model ran and no current flows between the electrodes: why (no "
                            "conducting path joins them)"),
    "transport": ("—", "only where electrodes were given but no phase of the map conducts Na+ (e.g. cubic Au): "
                       "{skipped: true, reason}; the transport model did not run and nothing of it was written "
                       "(also /parameters run transport_skipped)"),
}


#: Columns of batch_summary.csv (`index`/`run` with several inputs; stemgrains.batch). The label and behaviour
#: columns are one per name: ``label_fraction_<label>`` (spaces and hyphens → ``_``, e.g. ``label_fraction_III_a2``)
#: for the 12 labels and other-phase, ``behaviour_fraction_<behaviour>`` for the 4 behaviours and other-phase.
BATCH_SUMMARY: dict[str, tuple[str, str]] = {
    "input": ("—", "input file, as given or found"),
    "output": ("—", "its output folder, OUTDIR/<name> (index: results.h5 inside it)"),
    "status": ("—", "done (this time), skipped (done before with the same content checksum and parameters), "
                    "failed, or pending (the batch was interrupted before it ran)"),
    "reason": ("—", "failed: the one-line reason; skipped: when it was done"),
    "parameters": ("—", "fingerprint of the parameters this input's results were made with (16 hex digits; "
                        "batch_parameters.json `fingerprint` of the batch that made them): rows of one folder that "
                        "differ here ran with other parameters, which the subfolder's config.toml (run) or "
                        "results.h5 `/parameters` hold in full"),
    "seconds": ("s", "wall time of this input's job (0 when skipped)"),
    "scan_rows": ("px", "scan rows ny"),
    "scan_cols": ("px", "scan columns nx"),
    "patterns_per_s": ("1/s", "patterns per second of the indexing stage in the call that finished it (the "
                              "patterns it indexed over its time; chunks resumed from a checkpoint count in neither; "
                              "empty where it resumed them all)"),
    "indexed_percent": ("%", "patterns with an orientation"),
    "median_reliability": ("1", "median reliability (0–100) over the map"),
    "reliable_percent": ("%", "patterns with reliability ≥ 5"),
    "grain_reliable_percent": ("%", "patterns with grain_reliability ≥ 5 (empty for maps indexed without the "
                                    "grain vote)"),
    "excitation_error_sigma": ("1/Å", "relrod width σ_s of the kinematic model this scan was indexed with (chosen "
                                      "from this scan's data unless [index] excitation_error_sigma set it; also "
                                      "/parameters index of its results file)"),
    "excitation_error_sigma_source": ("—", "how σ_s was obtained: 'chosen from the data', 'set', \"the libraries'\", "
                                           "'the default: fewer than 64 patterns to choose from' or 'the default: no subsample pattern was indexed with reliability ≥ 5 under any candidate width'"),
    "refine_excitation_error_sigma": ("1/Å", "relrod width of the final refinement of this scan's solutions (equal "
                                             "to excitation_error_sigma: none; empty: turned off by [index] "
                                             "final_refinement false; chosen from the data unless [index] "
                                             "refine_excitation_error_sigma set it)"),
    "refine_excitation_error_sigma_source": ("—", "how the final refinement's width was obtained (as in "
                                                  "/parameters index of the results file: 'chosen from the data', "
                                                  "'set', 'off', or \"the search's: ...\" with the reason)"),
    "phase_fit_warning": ("—", "the phase-fit check's warnings, joined by ' | '; empty when the phases explain "
                               "the patterns"),
    "warnings": ("—", "what a single index/run prints on stderr about this input, joined by ' | ': the note on a "
                      "defaulted voltage or scan step ('note: ...'), 'warning: no pattern was indexed ...', "
                      "'warning: no indexed pattern is reliable ...' and the phase-fit warnings; marked '!' in "
                      "batch_summary.png"),
    "n_grains": ("—", "grains (run only)"),
    "n_boundaries": ("—", "boundaries, i.e. grain pairs (run only)"),
    "c_axis_uncertain_percent": ("%", "share of the classified boundary length whose label rests on a grain with "
                                      "median c-axis reliability < 5 (summary.json classification "
                                      "c_axis_uncertain_fraction; run only, empty where nothing is judged)"),
    "label_fraction_<label>": ("1", "boundary length fraction carrying that label (run only)"),
    "behaviour_fraction_<behaviour>": ("1", "boundary length fraction with that behaviour (run only)"),
}


def describe(group: str, name: str) -> tuple[str, str] | None:
    """``(unit, definition)`` of column/array ``name`` in results-file group ``group`` (e.g.
    ``"classification/segments"``), or ``None`` when it is not in the dictionary."""
    return GROUPS.get(group.strip("/"), {}).get(name)


def annotate_units(h5file: Any) -> int:
    """Set the ``unit`` and ``description`` attributes of every dataset of an open results file that the
    dictionary knows; returns how many were annotated. Datasets it does not know are left as they are."""
    import h5py

    count = 0

    def visit(path: str, obj: Any) -> None:
        nonlocal count
        if not isinstance(obj, h5py.Dataset):
            return
        group, _, name = path.rpartition("/")
        entry = describe(group, name)
        if entry is not None:
            obj.attrs["unit"], obj.attrs["description"] = entry
            count += 1

    h5file.visititems(visit)
    return count


def render_tables() -> str:
    """The data tables of docs/data-dictionary.md (from :data:`GROUPS` and :data:`BATCH_SUMMARY`); the whole
    generated part of the page, config keys included, is :func:`stemgrains.dictionary_page.render_markdown`."""
    lines: list[str] = []
    csv_of = {"classification/boundaries": "boundaries.csv (`run`), `classify --csv OUT.csv`",
              "classification/segments": "segments.csv (`run`), `classify --csv` → OUT.segments.csv",
              "boundaries/boundaries": "`segment --csv OUT.csv`",
              "boundaries/segments": "`segment --csv` → OUT.segments.csv",
              "compare/grains": "grains_matched.csv (`compare`)",
              "compare/boundaries": "boundaries_changed.csv (`compare`)",
              "series/events": "events.csv (`series`)",
              "series/enrichment": "enrichment.csv (`series`)"}
    for group, cols in GROUPS.items():
        lines.append(f"### `/{group}`")
        lines.append("")
        if group in csv_of:
            lines.append(f"Also as CSV: {csv_of[group]}.")
            lines.append("")
        lines.append("| name | unit | definition |")
        lines.append("|---|---|---|")
        for name, (unit, text) in cols.items():
            lines.append(f"| `{name}` | {unit} | {text} |")
        lines.append("")
    lines.append("### `summary.json`")
    lines.append("")
    lines.append("| key | unit | definition |")
    lines.append("|---|---|---|")
    for name, (unit, text) in SUMMARY.items():
        lines.append(f"| `{name}` | {unit} | {text} |")
    lines.append("")
    lines.append("### `batch_summary.csv`")
    lines.append("")
    lines.append("One row per input of `index`/`run` given several inputs (OUTDIR/batch_summary.csv).")
    lines.append("")
    lines.append("| column | unit | definition |")
    lines.append("|---|---|---|")
    for name, (unit, text) in BATCH_SUMMARY.items():
        lines.append(f"| `{name}` | {unit} | {text} |")
    lines.append("")
    return "\n".join(lines)
