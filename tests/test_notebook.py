"""examples/quickstart.ipynb runs top to bottom in a real kernel (smoke settings, no weights)."""

import base64
import io
import os

import pytest
from PIL import Image

nbformat = pytest.importorskip("nbformat", reason="pip install nbformat nbclient ipykernel")
nbclient = pytest.importorskip("nbclient", reason="pip install nbformat nbclient ipykernel")
pytest.importorskip("ipykernel", reason="pip install nbformat nbclient ipykernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "quickstart.ipynb")


def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    output = tmp_path / "stylized.png"
    monkeypatch.setenv("TFSTYLE_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("TFSTYLE_NOTEBOOK_OUTPUT", str(output))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    # The kernel must import this tree's tfstyle, not another installed copy.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    )
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": os.path.join(ROOT, "examples")}},
    )
    client.execute()

    text = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", [])
    )
    assert "32 px, 3 steps, weights=None" in text
    assert "3 steps in" in text and f"saved {output}" in text
    pngs = [
        base64.b64decode(out["data"]["image/png"])
        for cell in notebook.cells
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]
    # The live preview (3 images, one output updated in place), side by side, loss curves.
    assert len(pngs) == 3
    with Image.open(io.BytesIO(pngs[0])) as preview, Image.open(output) as saved:
        assert preview.size == saved.size and max(saved.size) == 32


def test_install_cell_installs_the_uploaded_wheel(tmp_path, monkeypatch):
    """No PyPI release yet: on Colab the install cell installs the uploaded wheel, with the
    notebook extras, or refuses with one line when there is none."""
    import sys
    import types

    from IPython.core.interactiveshell import InteractiveShell

    [cell] = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if "!pip" in c.source]
    shell = InteractiveShell.instance()
    commands = []
    monkeypatch.setattr(shell, "system", lambda cmd: commands.append(shell.var_expand(cmd)))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.delenv("TFSTYLE_PIP", raising=False)
    monkeypatch.chdir(tmp_path)
    refused = shell.run_cell(cell.source)
    assert isinstance(refused.error_in_exec, FileNotFoundError) and commands == []
    assert "upload a tfstyle-*.whl" in str(refused.error_in_exec)
    (tmp_path / "tfstyle-0.2.0-py3-none-any.whl").write_bytes(b"")
    assert shell.run_cell(cell.source).success
    assert commands == ['pip install -q "./tfstyle-0.2.0-py3-none-any.whl[colab]"']
    monkeypatch.setenv("TFSTYLE_PIP", "tfstyle[colab] @ git+https://example.invalid/tfstyle")
    assert shell.run_cell(cell.source).success
    assert commands[-1] == 'pip install -q "tfstyle[colab] @ git+https://example.invalid/tfstyle"'
