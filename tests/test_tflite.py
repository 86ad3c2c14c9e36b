"""A trained stylizer exported as a TFLite model of one size (tfstyle.export.tflite), run by
the TFLite interpreter, against the Keras network; and `tfstyle export --model`."""

import keras
import numpy as np
import pytest
from cli_runner import assert_clean_failure, run_inprocess

from tfstyle.errors import ConfigError, OutputError

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the TFLite converter needs TensorFlow"
)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from tfstyle.models.transformer import build_stylizer

    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    build_stylizer(width=4, residual_blocks=1).save(path)
    return path


def _interpreter(path):
    try:  # LiteRT, TFLite's successor, where installed
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter


def _paint(path, image):
    interpreter = _interpreter(path)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_the_tflite_model_paints_as_the_keras_network(tmp_path, model_file):
    from tfstyle.export.tflite import export_tflite
    from tfstyle.fast.stylizer import FastStylizer

    stylizer = FastStylizer.load(model_file)
    path = export_tflite(stylizer.model, tmp_path / "tiny.tflite", height=24, width=32)
    details = _interpreter(path).get_input_details()[0]
    assert list(details["shape"]) == [24, 32, 3] and details["dtype"] == np.uint8
    image = (np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8)
    painted = _paint(path, image)
    expected = np.round(stylizer(image) * 255)
    assert painted.dtype == np.uint8 and painted.shape == (24, 32, 3)
    assert np.abs(painted.astype(np.float32) - expected).max() <= 1  # rounding near .5
    assert painted.std() > 1  # a picture, not a constant


def test_bad_tflite_targets_are_refused(tmp_path, model_file):
    from tfstyle.export.tflite import export_tflite
    from tfstyle.fast.stylizer import FastStylizer

    model = FastStylizer.load(model_file).model
    with pytest.raises(ConfigError, match=r"\.tflite file"):
        export_tflite(model, tmp_path / "tiny.png", height=32, width=32)
    with pytest.raises(ConfigError, match="over 16,777,216 pixels"):
        export_tflite(model, tmp_path / "huge.tflite", height=100_000, width=100_000)
    with pytest.raises(ConfigError, match="height must be at least 16"):
        export_tflite(model, tmp_path / "tiny.tflite", height=8, width=32)
    (tmp_path / "old.tflite").write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        export_tflite(model, tmp_path / "old.tflite", height=32, width=32)
    assert (tmp_path / "old.tflite").read_bytes() == b"old"


def test_the_export_command_writes_a_tflite_model(tmp_path, model_file, capfd):
    output = tmp_path / "tiny_32x24.tflite"
    args = ["export", "--model", model_file, "--output", output]
    result = run_inprocess([*args, "--tflite_size", "32x24"], capfd)
    assert result.code == 0, result.stderr
    assert "paints uint8 [24, 32, 3] images" in result.stderr
    assert _paint(output, np.zeros((24, 32, 3), np.uint8)).shape == (24, 32, 3)
    output.unlink()
    for extra, match in (
        (["--tflite_size", "10"], "each at least 16"),
        (["--tflite_size", "32by24"], "WIDTHxHEIGHT"),
        ([], "give --tflite_size"),
        (["--tflite_size", "32", "--style", model_file], "takes no --style"),
    ):
        assert_clean_failure(run_inprocess([*args, *extra], capfd), output=output, match=match)
    image = ["--content", model_file, "--style", model_file, "--output", tmp_path / "o.png"]
    result = run_inprocess([*image, "--tflite_size", "32"], capfd)
    assert_clean_failure(result, output=tmp_path / "o.png", match="is for tfstyle export --model")
