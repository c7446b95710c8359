"""Derivations, Jacobians and graphs in Jupyter: a real notebook, run by a real kernel."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

EXAMPLE = Path(__file__).parents[1] / "examples" / "network_iii.ipynb"


def run(nb):
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return nb


def outputs(cell):
    return {mime: value for out in cell.get("outputs", []) for mime, value in out.get("data", {}).items()} | \
        {"stream": "".join(out.get("text", "") for out in cell.get("outputs", []) if out.get("output_type") == "stream")}


def test_a_derivation_a_jacobian_and_a_graph_display_themselves():
    from nbformat.v4 import new_code_cell, new_notebook
    nb = new_notebook(cells=[
        new_code_cell('import matcalc\nmatcalc.grad("sum((W*X - Y).^2)", wrt="W")'),
        new_code_cell('matcalc.jacobian("softmax(z)", wrt="z")'),
        new_code_cell('matcalc.graph("(x + y)*z", at={"x": -2, "y": 5, "z": -4})'),
    ])
    derivation, jacobian, graph = (outputs(c) for c in run(nb).cells)
    assert r"\frac{\partial l}{\partial W} = 2 \left(W X - Y\right) X^\top" in derivation["text/markdown"]
    assert "| 2 | R5 |" in derivation["text/markdown"]
    assert r"\operatorname{diag}" in jacobian["text/markdown"]
    assert "image/svg+xml" in graph or "```dot" in graph["text/markdown"]
    assert "| 4 | `(x + y)*z` | -12 | 1 |" in graph["text/markdown"]


def test_the_network_iii_example_notebook_runs():
    nb = run(nbformat.read(EXAMPLE, as_version=4))
    nbformat.validate(nb)
    texts = [outputs(c) for c in nb.cells if c.cell_type == "code"]
    assert r"\frac{\partial l}{\partial W_2}" in texts[0]["text/markdown"]
    assert "dZ2 = (softmax(Z2) - Y)/m" in texts[1]["stream"]
    assert texts[2]["stream"].count("✓ matches") == 8
