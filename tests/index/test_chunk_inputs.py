"""ChunkInputs names the inputs of every index_chunk backend in their order (they are passed as ``*inputs``)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from stemgrains.index import _cpu, _reference


def _ast_args(path: Path, name: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)
    return [a.arg for a in fn.args.args]


def test_chunk_inputs_match_every_backend_signature():
    fields = list(_cpu.ChunkInputs._fields)
    assert len(fields) == 32
    assert list(inspect.signature(_cpu.index_chunk.py_func).parameters) == fields
    assert list(inspect.signature(_reference.index_chunk).parameters) == fields
    gpu = Path(_cpu.__file__).with_name("_gpu.py")  # importing it needs CUDA or the simulator; its AST does not
    assert _ast_args(gpu, "index_chunk_gpu") == fields
