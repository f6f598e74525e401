"""The generated part of docs/data-dictionary.md: the data dictionary's tables
(:func:`stemgrains.data_dictionary.render_tables`) and the config keys (:func:`stemgrains.settings.schema`).

Regenerate the page's tables with ``python -m stemgrains.dictionary_page``; a test keeps the page equal to
:func:`render_markdown`.
"""

from __future__ import annotations

from pathlib import Path

from .data_dictionary import render_tables
from .settings import SECTIONS, schema, toml_value

__all__ = ["render_markdown", "regenerate"]


def render_markdown() -> str:
    """The tables of docs/data-dictionary.md below its "generated" marker (Markdown text)."""
    lines: list[str] = [render_tables()]
    lines.append("### Config keys (`config.toml`, `/parameters` attribute `config`, `stemgrains config --dump`)")
    lines.append("")
    lines.append("| key | type | unit | default | option | meaning |")
    lines.append("|---|---|---|---|---|---|")
    for key in schema():
        default = "unset" if key.default is None else f"`{toml_value(key.default)}`"
        option = f"`{key.flag}`" if key.flag else ""
        kind = key.kind + (f" ({', '.join(key.choices)})" if key.choices else "")
        cells = [f"`[{key.section}] {key.name}`", kind, key.unit, default, option, key.meaning]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    lines.append("Sections: " + "; ".join(f"`[{s}]` {t}" for s, t in SECTIONS.items()) + ".")
    lines.append("")
    return "\n".join(lines)


MARKER = "<!-- generated from stemgrains.data_dictionary: do not edit below -->\n\n"


def regenerate(page: Path) -> bool:
    """Rewrite the generated part of ``page`` (below :data:`MARKER`) atomically; False when ``page`` has no marker."""
    text = page.read_text(encoding="utf-8") if page.is_file() else ""
    if MARKER not in text:
        return False
    tmp = page.with_name(page.name + ".tmp")
    tmp.write_text(text.split(MARKER, 1)[0] + MARKER + render_markdown(), encoding="utf-8")
    tmp.replace(page)
    return True


if __name__ == "__main__":  # pragma: no cover  (regenerates the tables of docs/data-dictionary.md)
    doc = Path(__file__).resolve().parents[2] / "docs" / "data-dictionary.md"  # a source checkout
    if regenerate(doc):
        print(f"wrote {doc}")
    else:
        print(render_markdown(), end="")
