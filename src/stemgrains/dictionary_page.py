"""The generated part of docs/data-dictionary.md: the data dictionary's tables
(:func:`stemgrains.data_dictionary.render_tables`) and the config keys (:func:`stemgrains.settings.schema`).

Regenerate the page's tables with ``python -m stemgrains.dictionary_page``; a test keeps the page equal to
:func:`render_markdown`.
"""

from __future__ import annotations

from .data_dictionary import render_tables
from .settings import SECTIONS, schema, toml_value

__all__ = ["render_markdown"]


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


if __name__ == "__main__":  # pragma: no cover  (regenerates the tables of docs/data-dictionary.md)
    print(render_markdown(), end="")
