"""The README and docs name only what exists: every path into the code they give (`tfstyle/...`,
`scripts/...`, `docs/...`, `tests/...`) and every relative link is there, and every dotted
`tfstyle.<module>.<name>` resolves. (`saved_models/NAME/1` and the like are examples of where
a user's files go, so paths under examples/ and saved_models/ are checked only as links.)"""

import importlib
import os
import re

import pytest
from cli_runner import ROOT

DOCUMENTS = (
    "README.md",
    "BENCHMARKS.md",
    "saved_models/README.md",
    *(f"docs/{name}" for name in sorted(os.listdir(os.path.join(ROOT, "docs"))) if ".md" in name),
)
PATH = re.compile(r"(?<![\w/.-])((?:tfstyle|scripts|docs|tests)/[\w./-]*\w)")
LINK = re.compile(r"\]\((?!https?:)([\w./-]+)(?:#[\w-]*)?\)")
DOTTED = re.compile(r"(?<![\w/.])tfstyle(?:\.\w+)+")


def _text(document):
    with open(os.path.join(ROOT, document), encoding="utf-8") as file:
        return file.read()


def _resolves(dotted):
    """The longest importable module prefix of `dotted`, then attributes for the rest."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for name in parts[i:]:
                value = getattr(value, name)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_path_named_exists(document):
    text = _text(document)
    here = os.path.dirname(document)
    named = {p for p in PATH.findall(text) if "*" not in p}
    linked = {os.path.normpath(os.path.join(here, p)) for p in LINK.findall(text)}
    missing = {p for p in named | linked if not os.path.exists(os.path.join(ROOT, p))}
    assert not missing, f"{document} names paths that do not exist: {sorted(missing)}"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_dotted_name_resolves(document):
    unresolved = sorted({d for d in DOTTED.findall(_text(document)) if not _resolves(d)})
    assert not unresolved, f"{document} names what does not exist: {unresolved}"
