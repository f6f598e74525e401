"""Sphinx directive ``.. stemgrains-cli::``: the command-line reference, generated from the argparse parser.

It builds :func:`stemgrains.cli.build_parser` (the parser the ``stemgrains`` command runs), lists every
subcommand with its one-line help, and gives each a section with its full ``--help`` text (description, usage,
every option), so the page cannot drift from the code.
"""

from __future__ import annotations

import argparse
import functools

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

HELP_WIDTH = 100


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of every subcommand, in the order ``stemgrains --help`` lists them."""
    for action in parser._actions:  # argparse keeps no public list of subparsers
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, helps.get(name, ""), p) for name, p in action.choices.items()]
    raise RuntimeError("stemgrains.cli.build_parser() has no subcommands")


def _help_text(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=HELP_WIDTH)
    return parser.format_help().rstrip()


def _indent(text: str) -> list[str]:
    return ["   " + line if line else "" for line in text.splitlines()]


class StemgrainsCli(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from stemgrains.cli import build_parser

        parser = build_parser()
        commands = _subcommands(parser)
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 20 80", "", "   * - command", "     - what"]
        for name, short, _ in commands:
            lines += [f"   * - :ref:`stemgrains {name} <cli-{name}>`", f"     - {_escape(short)}"]
        lines += ["", "``stemgrains --help``:", "", ".. code-block:: text", ""]
        lines += _indent(_help_text(parser)) + [""]
        for name, _short, sub in commands:
            title = f"stemgrains {name}"
            lines += [f".. _cli-{name}:", "", title, "-" * len(title), ""]
            lines += [".. code-block:: text", ""] + _indent(_help_text(sub)) + [""]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="stemgrains.cli.build_parser()"), container)
        return container.children


def _escape(text: str) -> str:
    """Plain argparse text as reStructuredText: no inline markup, one line."""
    text = " ".join(str(text).split())
    for ch in "\\*`|_":
        text = text.replace(ch, "\\" + ch)
    return text


def setup(app):
    app.add_directive("stemgrains-cli", StemgrainsCli)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
