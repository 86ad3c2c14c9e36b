"""The rooms of tfstyle and the one way data flows between them (docs/python-api.md, "How the
modules fit together"): a module may import from its own room and from rooms in lower layers,
never from a room above it or beside it. Read from the source with `ast`, every import
included (those inside functions too), so nothing is imported to check it."""

import ast
import os

import pytest
from cli_runner import ROOT

PACKAGE = os.path.join(ROOT, "tfstyle")

# Lowest first. Rooms in one layer are independent of each other.
LAYERS = (
    ("errors",),
    ("settings",),
    ("ops",),
    ("io",),
    ("models",),
    ("optimize",),
    ("integrations",),
    ("fast", "video"),
    ("export",),
    ("beam", "app"),
    ("cli",),
    ("__main__",),
)
LAYER_OF = {room: i for i, rooms in enumerate(LAYERS) for room in rooms}


def _modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, PACKAGE), path


def _room(relative):
    """The room of a file (`ops/losses.py` -> ops, `errors.py` -> errors); None for the public
    `__init__.py`, which may name anything (it imports on first use)."""
    first = relative.replace(os.sep, "/").split("/")[0]
    if first == "__init__.py":
        return None
    return first.removesuffix(".py")


def _imported_rooms(path):
    """(line, room) of every `tfstyle.<room>` the file imports; `import tfstyle` and `from
    tfstyle import __version__` name the package itself, which is allowed everywhere."""
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "tfstyle":
                names = [f"tfstyle.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "tfstyle" and len(parts) > 1 and parts[1] != "__version__":
                yield node.lineno, parts[1]


def violations():
    """`file:line: room -> room` for every import that runs up or sideways."""
    found = []
    for relative, path in _modules():
        room = _room(relative)
        if room is None:
            continue
        assert room in LAYER_OF, f"{relative}: room {room!r} is in no layer of LAYERS"
        for line, target in _imported_rooms(path):
            assert target in LAYER_OF, f"{relative}:{line}: imports unknown room {target!r}"
            if target != room and LAYER_OF[target] >= LAYER_OF[room]:
                found.append(f"{relative}:{line}: {room} -> {target}")
    return found


def test_no_module_imports_from_a_room_above_or_beside_it():
    assert violations() == []


def test_relative_imports_are_not_used():
    # The check above reads absolute imports only; a relative one would slip past it.
    for relative, path in _modules():
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
        levels = [n.level for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not any(levels), f"{relative} uses a relative import"


def test_an_import_that_runs_up_is_found(tmp_path, monkeypatch):
    """The check itself: a settings module that imports the engine is reported."""
    fake = tmp_path / "tfstyle"
    (fake / "settings").mkdir(parents=True)
    (fake / "settings" / "bad.py").write_text(
        "def f():\n    from tfstyle.optimize.stylize import stylize\n"
    )
    (fake / "ops").mkdir()
    (fake / "ops" / "fine.py").write_text("from tfstyle.settings.style import DEFAULTS\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", str(fake))
    assert violations() == [f"settings{os.sep}bad.py:2: settings -> optimize"]


@pytest.mark.parametrize("room", sorted(LAYER_OF))
def test_every_room_exists(room):
    assert os.path.exists(os.path.join(PACKAGE, room)) or os.path.exists(
        os.path.join(PACKAGE, f"{room}.py")
    )


# Where TensorFlow and Keras keep what they do not promise to keep: a module of these may move
# or vanish in any release (issue 22: `tensorflow.python...convert_to_constants`).
PRIVATE_PACKAGES = ("tensorflow.python", "tensorflow.compiler", "tensorflow.core", "keras.src")


def _imports(path):
    """(line, module) of every absolute import in the file, those inside functions too."""
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            yield node.lineno, name


def _private_imports(path):
    for line, name in _imports(path):
        if any(name == p or name.startswith(p + ".") for p in PRIVATE_PACKAGES):
            yield line, name


def test_the_library_imports_no_private_tensorflow_or_keras_module():
    found = [
        f"{relative}:{line} imports {name}"
        for relative, path in _modules()
        for line, name in _private_imports(path)
    ]
    assert found == []


def test_weights_files_are_read_only_in_the_io_room():
    # File access lives in tfstyle/io: models/vgg.py peeked into weights files with h5py.
    found = [
        f"{relative}:{line}"
        for relative, path in _modules()
        if _room(relative) != "io"
        for line, name in _imports(path)
        if name == "h5py" or name.startswith("h5py.")
    ]
    assert found == []
