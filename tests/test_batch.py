"""Batch runs: compiled steps reused across images (RunnerCache), and the CLI's batch mode."""


import numpy as np
import pytest

from tfstyle import RunnerCache, stylize


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "lbfgs"])
def test_runner_reused_for_images_of_one_size(content_image, style_image, tiny_config, optimizer):
    config = tiny_config.replace(optimizer=optimizer, iterations=4, steps_per_call=2)
    other_content = np.ascontiguousarray(content_image[::-1, ::-1])
    other_style = np.ascontiguousarray(style_image[:, ::-1, ::-1])
    cache = RunnerCache()
    stylize(content_image, style_image, config=config, runners=cache)
    [runner] = cache.runners()
    traced = runner._run if optimizer != "lbfgs" else runner._value_and_grad
    traces = traced.experimental_get_tracing_count()
    assert traces >= 1
    second = stylize(other_content, other_style, config=config, runners=cache)
    assert cache.runners() == [runner]
    assert traced.experimental_get_tracing_count() == traces  # no new trace
    # The reset runner gives exactly what a fresh one does: optimizer state starts afresh.
    fresh = stylize(other_content, other_style, config=config)
    np.testing.assert_allclose(second.image, fresh.image, atol=1e-6)
    np.testing.assert_allclose(second.history["total"], fresh.history["total"], rtol=1e-5)


def test_runner_cache_keys_on_size_and_settings(content_image, style_image, tiny_config):
    config = tiny_config.replace(iterations=2, steps_per_call=2)
    cache = RunnerCache(maxsize=2)
    stylize(content_image, style_image, config=config, runners=cache)
    stylize(content_image[:32], style_image, config=config, runners=cache)  # another size
    assert len(cache) == 2
    stylize(content_image, style_image, config=config.replace(style_weight=3.0), runners=cache)
    assert len(cache) == 2  # a third key; the least recently used runner went
    first = cache.runners()[-1]
    stylize(content_image, style_image, config=config.replace(style_weight=3.0), runners=cache)
    assert cache.runners()[-1] is first
