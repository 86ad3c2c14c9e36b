"""The web app's settings (`tfstyle app`, `tfstyle.app.build`): where it listens, what it
accepts, and what the page offers. Plain constants: the page's controls start from these and the
command line's `StyleConfig`."""

from tfstyle.errors import ConfigError

# Only this machine can reach the page unless its owner asks for more (--host 0.0.0.0, --share).
HOST = "127.0.0.1"
PORT = 7860
# Gradio refuses larger uploads before they reach our code (its max_file_size).
MAX_UPLOAD = "20mb"
# The page's size slider: the output's longest side, its default and range.
PAGE_MAX_SIZE = 384
SIZE_RANGE = (64, 1024)
# Where `tfstyle app` looks for trained stylizers by default (`saved_models/NAME/VERSION`).
MODELS_DIR = "saved_models"
# Gradio deletes the files it cached for a page (uploads, results) this many seconds old, checked
# this often: a result stays downloadable for an hour, nothing stays for ever.
CACHE_MAX_AGE_S = 3600
# Quality/speed presets: the command line's iterations (its --iterations, 200 by default) times
# the factor, and its scales unless the preset names a number. "draft" runs one scale (the
# pyramid's coarse scales cost about as much as the last one: see SCALE_ITERATION_RATIO).
PRESETS = {
    "draft": (0.25, 1),
    "standard": (1.0, None),
    "fine": (2.0, None),
}
PRESET = "standard"


def preset_settings(name, *, iterations, scales):
    """`{"iterations", "scales"}` of preset `name` for a command line's `iterations` and
    `scales` (raises ConfigError for an unknown name)."""
    if name not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    factor, preset_scales = PRESETS[name]
    return {
        "iterations": max(1, round(iterations * factor)),
        "scales": scales if preset_scales is None else preset_scales,
    }
