"""The package as installed and imported: its public names, documented submodules and metadata."""

import os
import re
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from cli_runner import ROOT, subprocess_env

# The rooms (subpackages), attributes of the package on first use (`tfstyle.io`, `tfstyle.ops`...).
DOCUMENTED_SUBMODULES = (
    "app",
    "beam",
    "cli",
    "export",
    "fast",
    "integrations",
    "io",
    "models",
    "ops",
    "optimize",
    "settings",
    "video",
)


def test_documented_submodules_are_attributes_of_a_fresh_import():
    # A fresh process: in this one, earlier tests have imported the submodules already.
    names = " ".join(DOCUMENTED_SUBMODULES)
    code = f"import tfstyle; print(*(getattr(tfstyle, n).__name__ for n in {names!r}.split()))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=ROOT,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"tfstyle.{n}" for n in DOCUMENTED_SUBMODULES]


def test_losses_has_the_functions_the_readme_lists():
    from tfstyle.ops import losses

    ones = np.ones((1, 2, 2, 3), np.float32)
    gram = losses.gram_matrix
    np.testing.assert_allclose(gram(ones), np.ones((1, 3, 3)))
    # Relative squared errors: sum((1 - 2)^2) / sum(2^2) and, for Grams 1 and 4, 9 / 16.
    assert float(losses.content_loss(ones, 2 * ones)) == pytest.approx(0.25)
    assert float(losses.style_loss(ones, gram(2 * ones))) == pytest.approx(9 / 16)
    stripes = np.zeros((1, 2, 2, 3), np.float32)
    stripes[:, :, 1] = 1.0  # columns 0 and 1 differ by 1: horizontal mean 1, vertical 0
    assert float(losses.total_variation_loss(stripes)) == pytest.approx(1.0)


def test_every_name_the_readme_uses_is_public():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        named = set(re.findall(r"`tfstyle\.([A-Za-z_]+)", file.read()))
    import tfstyle

    assert named - set(tfstyle.__all__) <= set(DOCUMENTED_SUBMODULES)


def test_unknown_attribute_is_still_an_attribute_error():
    import tfstyle

    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        _ = tfstyle.nonsense


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as file:
        return tomllib.load(file)


def test_keras_requirement_is_new_enough_for_remat_scope():
    # features.py uses keras.RematScope (Keras 3.9); 3.9.2 fixed a bug in it.
    (keras,) = [d for d in _pyproject()["project"]["dependencies"] if d.startswith("keras")]
    assert keras.replace(" ", "") == "keras>=3.9.2"


def test_only_named_warnings_are_ignored():
    # `ignore::DeprecationWarning` hid every deprecation, tfstyle's own and its dependencies'.
    for entry in _pyproject()["tool"]["pytest"]["ini_options"]["filterwarnings"]:
        action, message, *_ = entry.split(":")
        assert action != "ignore" or message.strip(), f"{entry!r} ignores a whole category"


def test_video_packages_are_the_video_extra():
    # Only video needs PyAV and OpenCV: an extra, and in dev so that the tests have them.
    project = _pyproject()["project"]
    video = {"av>=12", "opencv-python-headless>=4.8"}
    assert set(project["optional-dependencies"]["video"]) == video
    assert video <= set(project["optional-dependencies"]["dev"])
    assert not {d.split(">")[0] for d in project["dependencies"]} & {"av", "opencv-python-headless"}


def test_every_public_name_resolves():
    # It checked each name's __name__ only: now each is the very object of the module the
    # table names (not a same-named copy), that module is tfstyle's, and dir() lists them.
    import importlib

    import tfstyle

    assert tfstyle.__all__ == sorted(tfstyle._EXPORTS)
    assert set(tfstyle.__all__) <= set(dir(tfstyle))
    for name, module in tfstyle._EXPORTS.items():
        value = getattr(tfstyle, name)
        assert value is getattr(importlib.import_module(module), name), name
        assert value.__name__ == name and module.startswith("tfstyle."), name
        # Defined there or in a lower tfstyle module, never a third-party object.
        assert value.__module__.startswith("tfstyle."), (name, value.__module__)
