"""Export the optimisation itself as a TensorFlow SavedModel: the whole of `stylize()` (targets,
steps, clip) runs in its graph. (A trained feed-forward stylizer is exported by
`tfstyle.export.stylizer`.)

The SavedModel's `serving_default` signature takes `content` and `style`, uint8 `[H, W, 3]`
images of any size within `MIN_SIDE`..`MAX_INPUT_SIDE`, and returns `stylized_image` (uint8
`[h, w, 3]`, the content fitted to `max_size`) and `loss_history` (float32 `[iterations]`, the
total loss of each step). Inside one `tf.function`: resize, targets, `iterations` optimizer steps
in a `tf.while_loop`, clip. The VGG weights are variables of the module, so the SavedModel needs
TensorFlow only: not tfstyle, not Keras (`tf.saved_model.load(path)` or TF Serving).

TensorFlow backend only. The exported graph follows `stylize()` with these settings fixed at
export time: network, weights, layers and their weights, loss weights, `max_size`,
`style_scale`, `iterations`, optimizer ("sgd" or "adam"), learning rate and schedule, `init`
("content" or "noise") and `init_noise_ratio`. Not supported in the graph (a `ConfigError`):
L-BFGS, several scales, averaging, colour preservation, mixed precision, style losses other
than "gram".

Deviations from `stylize()`: images are resized with TensorFlow's Lanczos-3 (antialiased)
rather than Pillow's Lanczos, and "noise" comes from TensorFlow's stateless RNG, so results
match `stylize()` closely but not bit for bit unless no resize happens and `init="content"`.
"""

import keras
import tensorflow as tf

from tfstyle.errors import ConfigError
from tfstyle.io import check_new_directory, write_directory
from tfstyle.models.vgg import min_input_size
from tfstyle.ops.losses import gram_matrix
from tfstyle.optimize.objective import feature_extractor_for, make_loss_fn
from tfstyle.optimize.optimizers import make_schedule
from tfstyle.settings.style import EXPORT_DEFAULTS, SGD_GRADIENT_CLIP_RMS

MAX_INPUT_SIDE = 8192  # longest input side the signature accepts (a 8192^2 RGB image is 200 MB)
STYLE_MIN_SIDE = 16  # the style image's longest side is never below this (as `scale_style`)
SIGNATURE_INPUTS = ("content", "style")


def export_optimization(path, *, config=None, overwrite=False):
    """Write a SavedModel of the optimisation with `config` (default: `EXPORT_DEFAULTS`, the
    image defaults at one scale) to the directory `path`.

    The directory is written whole or not at all (see `write_directory`); missing
    parent directories are created. For TF Serving, export to `MODELS/NAME/1` (a version
    number as the last component).

    Args:
        path: the directory to write.
        config: the `StyleConfig` baked into the graph (None: the defaults).
        overwrite: replace an existing directory.

    Returns:
        The absolute path written.

    Raises:
        ConfigError: not the TensorFlow backend, or settings the graph does not support.
        OutputError: `path` exists (and not `overwrite`) or cannot be written.
        WeightsError: the network weights cannot be loaded.
    """
    check_new_directory(path, overwrite=overwrite)  # before the weights are loaded
    module = OptimizationModule(config or EXPORT_DEFAULTS)
    signatures = {"serving_default": module.serve}
    return write_directory(
        path,
        lambda directory: tf.saved_model.save(module, directory, signatures=signatures),
        overwrite=overwrite,
    )


def check_exportable(config):
    """Raise `ConfigError` naming every setting the in-graph optimisation does not support.

    Args:
        config: a `StyleConfig`.

    Raises:
        ConfigError: not the TensorFlow backend, or settings the graph does not support
            (L-BFGS, several scales, averaging, preserve_colors, an init other than content or
            noise, mixed precision, a style loss other than gram), all named in one line.
    """
    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"SavedModel export needs the TensorFlow backend (KERAS_BACKEND=tensorflow); "
            f"this is {keras.backend.backend()}"
        )
    problems = [
        message
        for failed, message in (
            (config.optimizer == "lbfgs", "optimizer lbfgs (use sgd or adam)"),
            (
                config.scale_count(config.max_size) != 1,
                f"scales={config.scales}, {config.scale_count(config.max_size)} scales at "
                f"max_size {config.max_size} (use scales=1)",
            ),
            (config.average != "none", f"average={config.average} (use none)"),
            (config.preserve_colors != "none", f"preserve_colors={config.preserve_colors}"),
            (config.init not in ("content", "noise"), f"init={config.init}"),
            # "auto" exports float32: the graph runs on machines not known here.
            (config.precision not in ("float32", "auto"), f"precision={config.precision}"),
            (config.style_loss != "gram", f"style_loss={config.style_loss} (use gram)"),
        )
        if failed
    ]
    if problems:
        raise ConfigError(f"the exported graph does not support {'; '.join(problems)}")


def _after_checks(tensors, checks):
    """`tensors`, readable only once every op in `checks` (assertions) has passed.

    A tf.function orders stateful ops, not an assertion before the ops that merely read the
    same input: without this, the network could run first on a too-small image and fail
    inside a pooling kernel (oneDNN's "could not create a descriptor") instead of with the
    assertion's message.
    """
    with tf.control_dependencies(checks):
        return [tf.identity(t) for t in tensors]


_SPEC = {name: tf.TensorSpec([None, None, 3], tf.uint8, name=name) for name in SIGNATURE_INPUTS}


class OptimizationModule(tf.Module):
    """A `tf.Module` whose `serve(content, style)` stylizes; see the module docstring.

    `export_optimization` saves one; call `serve` directly to run the graph in this process.

    Args:
        config: the `StyleConfig` baked into the graph.

    Raises:
        ConfigError: as `check_exportable`.
        WeightsError: the network weights cannot be loaded.
    """

    def __init__(self, config):
        super().__init__(name="tfstyle_stylizer")
        check_exportable(config)
        config = config.replace(precision="float32")  # "auto" included (see check_exportable)
        self._config = config
        extractor = feature_extractor_for(config)
        # The Keras model stays out of the object graph (a bound method is not tracked);
        # its weights are tracked as plain tf.Variables, which the traced graph reads.
        self._features = extractor.__call__
        self.network_variables = [w.value for w in extractor.weights]
        self._loss_fn = make_loss_fn(config)
        self._schedule = make_schedule(config.schedule, config.lr, config.iterations)
        # Built only to read the optimizer's constants from the one place that sets them.
        if config.optimizer == "adam":
            self._adam = _adam_constants(config)
        if config.optimizer == "sgd" and config.precondition == "rms":
            self._sgd = _sgd_constants(config)
        self._min_side = min_input_size(config.network, config.content_layers + config.style_layers)
        self.serve = tf.function(self._stylize, input_signature=[_SPEC["content"], _SPEC["style"]])

    def _stylize(self, content, style):
        c = self._config
        content = self._fit(_checked(content, "content"), c.max_size)
        height, width = tf.shape(content)[0], tf.shape(content)[1]
        content_check = tf.debugging.assert_greater_equal(
            tf.minimum(height, width),
            self._min_side,
            message=f"content too small: its shorter side at max_size {c.max_size} must "
            f"be at least {self._min_side} px",
        )
        style_longest = tf.maximum(
            STYLE_MIN_SIDE,
            _round_int(c.style_scale * tf.cast(tf.maximum(height, width), tf.float64)),
        )
        style = self._fit(_checked(style, "style"), style_longest, upscale=True)
        style_check = tf.debugging.assert_greater_equal(
            tf.reduce_min(tf.shape(style)[:2]),
            self._min_side,
            message=f"style too small: its shorter side must be at least {self._min_side} px",
        )
        # Neither image reaches the network before both have passed every check.
        content, style = _after_checks([content, style], [content_check, style_check])
        targets = self._targets(content[None], style[None])
        image, history = self._optimise(self._initial(content)[None], targets)
        pixels = tf.cast(tf.round(tf.clip_by_value(image[0], 0.0, 1.0) * 255.0), tf.uint8)
        return {"stylized_image": pixels, "loss_history": history}

    def _fit(self, image, longest, upscale=False):
        """`preprocessing.scaled_shape` + `resize` in the graph: longest side `longest`
        (never upscaled unless asked), Lanczos-3 with antialiasing, clipped to [0, 1]."""
        shape = tf.shape(image)[:2]
        current = tf.reduce_max(shape)
        target = longest if upscale else tf.minimum(longest, current)
        scale = tf.cast(target, tf.float64) / tf.cast(current, tf.float64)
        size = tf.maximum(1, _round_int(tf.cast(shape, tf.float64) * scale))
        return tf.cond(
            tf.reduce_all(tf.equal(size, shape)),
            lambda: image,
            lambda: tf.clip_by_value(
                tf.image.resize(image, size, method="lanczos3", antialias=True), 0.0, 1.0
            ),
        )

    def _targets(self, content, style):
        c = self._config
        content_features = self._features(content, training=False)
        style_features = self._features(style, training=False)
        return {
            "content": {k: content_features[k] for k in c.content_layers},
            "style": {k: gram_matrix(style_features[k]) for k in c.style_layers},
        }

    def _initial(self, content):
        c = self._config
        if c.init == "content" and c.init_noise_ratio == 0:
            return content
        noise = tf.random.stateless_uniform(tf.shape(content), seed=[c.seed, 0])
        base = noise if c.init == "noise" else content
        return (1.0 - c.init_noise_ratio) * base + c.init_noise_ratio * noise

    def _optimise(self, image, targets):
        # The runner's objective (`step` module): the total loss times the pixel count.
        pixels = tf.cast(tf.shape(image)[1] * tf.shape(image)[2], tf.float32)
        history = tf.TensorArray(tf.float32, size=self._config.iterations)

        def body(step, image, m, v, history):
            with tf.GradientTape() as tape:
                tape.watch(image)
                losses = self._loss_fn(self._features(image, training=False), image, targets)
                objective = losses["total"] * pixels
            grad = tape.gradient(objective, image)
            image, m, v = self._update(step, image, grad, m, v)
            # Projected gradient descent, as the runner: pixels stay in [0, 1].
            image = tf.clip_by_value(image, 0.0, 1.0)
            return step + 1, image, m, v, history.write(step, losses["total"])

        zeros = tf.zeros_like(image)
        _, image, _, _, history = tf.while_loop(
            lambda step, *_: step < self._config.iterations,
            body,
            (tf.constant(0), image, zeros, zeros, history),
            parallel_iterations=1,
        )
        return image, history.stack()

    def _update(self, step, image, grad, m, v):
        """One update of `make_optimizer`'s SGD (`PreconditionedSGD`, or the clipped raw
        gradient) or Adam, written out as functions of the loop state: Keras optimizers keep
        state in variables of a fixed shape, and the image size here is known only when the
        graph runs."""
        rate = self._schedule
        lr = rate(step) if callable(rate) else tf.constant(rate, tf.float32)
        lr = tf.cast(lr, tf.float32)
        if self._config.optimizer == "sgd":
            return self._sgd_update(step, image, grad, lr, m, v)
        beta_1, beta_2, epsilon = self._adam
        t = tf.cast(step + 1, tf.float32)
        alpha = lr * tf.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)
        m = m + (grad - m) * (1.0 - beta_1)
        v = v + (tf.square(grad) - v) * (1.0 - beta_2)
        return image - alpha * m / (tf.sqrt(v) + epsilon), m, v

    def _sgd_update(self, step, image, grad, lr, m, v):
        c = self._config
        if c.precondition == "rms":
            # PreconditionedSGD: `v` is the moving average of squared gradients.
            decay = self._sgd["rms_decay"]
            v = decay * v + (1.0 - decay) * tf.square(grad)
            corrected = v / (1.0 - decay ** tf.cast(step + 1, tf.float32))
            grad = grad / (tf.sqrt(corrected) + self._sgd["epsilon"])
        else:
            # keras.optimizers.SGD's global_clipnorm, as make_optimizer sets it.
            limit = SGD_GRADIENT_CLIP_RMS * tf.sqrt(tf.cast(tf.size(grad), tf.float32))
            grad = grad * tf.minimum(1.0, limit / tf.maximum(tf.norm(grad), 1e-12))
        if c.momentum == 0:
            return image - lr * grad, m, v
        # keras.optimizers.SGD with Nesterov momentum: `m` is the velocity.
        m = c.momentum * m - lr * grad
        return image + c.momentum * m - lr * grad, m, v


def _checked(image, name):
    shape = tf.shape(image)
    checks = [
        tf.debugging.assert_less_equal(
            tf.reduce_max(shape[:2]),
            MAX_INPUT_SIDE,
            message=f"{name} image too large: its longest side must be at most {MAX_INPUT_SIDE}",
        ),
        tf.debugging.assert_positive(tf.reduce_min(shape[:2]), message=f"{name} image is empty"),
    ]
    (image,) = _after_checks([image], checks)
    return tf.cast(image, tf.float32) / 255.0


def _round_int(x):
    # tf.round rounds half to even, as Python's round() in preprocessing.scaled_shape.
    return tf.cast(tf.round(x), tf.int32)


def _sgd_constants(config):
    from tfstyle.optimize.optimizers import make_optimizer

    sgd = make_optimizer(name="sgd", learning_rate=config.lr, momentum=config.momentum)
    return {"rms_decay": float(sgd.rms_decay), "epsilon": float(sgd.epsilon)}


def _adam_constants(config):
    from tfstyle.optimize.optimizers import make_optimizer

    adam = make_optimizer(name="adam", learning_rate=config.lr, total_steps=config.iterations)
    return float(adam.beta_1), float(adam.beta_2), float(adam.epsilon)
