"""The tiled step (TensorFlow): the untiled step's losses and gradient, with VGG run one tile at
a time, so that memory is bounded by the tile, not by the image (`StyleConfig.tile_size`).

A deviation from Gatys et al. (2016) in how the step is computed, not in what it computes: the
Gram matrices are still those of the whole image. Tiles optimised on their own would each match
the style's statistics separately, drift apart and show seams; here one step is

1. a forward pass over the tiles (`tfstyle.ops.tiles`: cores that partition the image, each
   with a halo covering the receptive field of the deepest layer, so its core's features are
   exactly the whole image's) that sums each style layer's `F^T F` and each content layer's
   squared error over the cores: the whole image's statistics, exactly;
2. the losses from those sums (the same formulas as `losses.style_transfer_losses`), and their
   gradient with respect to the sums (small `[C, C]` matrices and scalars); total variation and
   its gradient on the whole image, in place in NumPy (`_total_variation_and_grad`);
3. a forward and backward pass over the tiles of `<dL/dS, S_core> + <dL/dE, E_core>`, whose
   gradient with respect to the tile's pixels is the core's share of the whole image's gradient
   (halo pixels included: the core's features depend on them); the shares add up to the
   gradient of the untiled step;
4. one optimizer update of the whole image.

So about one more forward pass than an untiled step, plus the halos' overlap. The whole-image
arrays are what is left of a step's memory once VGG runs in tiles (604 MiB each at 8192 x 6144),
so the step keeps few of them: one image, one gradient, the optimizer's. Only the "gram"
style loss (mean/covariance and sliced Wasserstein would need their own sums), no masks, no
temporal loss, no float16 loss scaling: `StyleConfig` and `stylize` refuse those with tiles.
"""

import numpy as np
import tensorflow as tf

from tfstyle.ops.losses import relative_squared_error, weighted_mean
from tfstyle.ops.style_stats import EPSILON
from tfstyle.ops.tiles import layer_stride
from tfstyle.optimize.step.tensorflow import TensorFlowRunner


class TiledRunner(TensorFlowRunner):
    """A `TensorFlowRunner` whose losses and gradient come from `tiles` (see the module
    docstring); same interface (`tfstyle.optimize.step`). Steps run one at a time from Python
    (a compiled function per tile shape for each pass), so an interruption loses at most the
    step in progress."""

    # `optimise` reports each step as it ends (`Progress` with the image), not every
    # `steps_per_call`: at print sizes one tiled step takes minutes.
    one_step_calls = True

    def __init__(self, *, tiles, weights, **kwargs):
        super().__init__(**kwargs)
        self._tiles = list(tiles)
        self._weights = dict(weights)
        self._statistics_fn = tf.function(self._statistics, reduce_retracing=True)
        self._share_fn = tf.function(self._share, reduce_retracing=True)
        self._apply_fn = tf.function(self._apply)

    def _core_features(self, features, name, box):
        stride = layer_stride(name)
        top, left, bottom, right = (box[i] // stride for i in range(4))
        return tf.cast(features[name][:, top:bottom, left:right, :], tf.float32)

    def _statistics(self, tile, box, origin, content_targets):
        """Per style layer the core's `sum_p f_p f_p^T` `[C, C]`, per content layer its summed
        squared error against the target; `box` is the core in the tile's pixels (top, left,
        bottom, right), `origin` the tile's top-left corner in the image's."""
        features = self._extractor(tile, training=False)
        sums, errors = {}, {}
        for name in self._weights["style_layers"]:
            core = self._core_features(features, name, box)
            flat = tf.reshape(core, (-1, tf.shape(core)[3]))
            sums[name] = tf.matmul(flat, flat, transpose_a=True)
        for name, target in content_targets.items():
            core = self._core_features(features, name, box)
            stride = layer_stride(name)
            top = (origin[0] + box[0]) // stride
            left = (origin[1] + box[1]) // stride
            shape = tf.shape(core)
            target = tf.cast(target[:, top : top + shape[1], left : left + shape[2], :], tf.float32)
            errors[name] = tf.reduce_sum(tf.square(core - target))
        return sums, errors

    def _share(self, tile, box, origin, content_targets, sum_grads, error_grads):
        """The gradient, with respect to `tile`'s pixels, of its core's part of the objective
        (linearised at the whole image's statistics: see the module docstring)."""
        with tf.GradientTape() as tape:
            tape.watch(tile)
            sums, errors = self._statistics(tile, box, origin, content_targets)
            surrogate = tf.add_n(
                [tf.reduce_sum(sum_grads[k] * v) for k, v in sums.items()]
                + [error_grads[k] * v for k, v in errors.items()]
                + [tf.zeros((), tf.float32)]
            )
        return tape.gradient(surrogate, tile)

    def _tile_arguments(self, image, tile):
        pixels = tf.constant(image[:, tile.top : tile.bottom, tile.left : tile.right, :])
        box = tf.constant(
            [
                tile.core_top - tile.top,
                tile.core_left - tile.left,
                tile.core_bottom - tile.top,
                tile.core_right - tile.left,
            ],
            tf.int32,
        )
        return pixels, box, tf.constant([tile.top, tile.left], tf.int32)

    def _tiled_losses_and_grad(self, image, targets, scale=1.0):
        """`(losses, gradient)` of `scale` times the objective at `image` (NumPy float32
        `[1, H, W, 3]`), as the untiled `_losses_and_grad` gives them; the gradient is NumPy."""
        weights = self._weights
        content_targets = targets["content"]
        sums, errors = None, None
        for tile in self._tiles:
            part = self._statistics_fn(*self._tile_arguments(image, tile), content_targets)
            if sums is None:
                sums, errors = part
            else:
                sums = {k: sums[k] + part[0][k] for k in sums}
                errors = {k: errors[k] + part[1][k] for k in errors}
        height, width = int(image.shape[1]), int(image.shape[2])
        with tf.GradientTape() as tape:
            tape.watch([sums, errors])
            style = {}
            for name, value in sums.items():
                positions = (height // layer_stride(name)) * (width // layer_stride(name))
                gram = value[None] / float(positions)
                style[name] = (
                    relative_squared_error(gram, targets["style"][name]),
                    weights["style_layer_weights"][name],
                )
            content = {
                name: (value / (_squared_norm(content_targets[name]) + EPSILON), 1.0)
                for name, value in errors.items()
            }
            zero = tf.zeros((), tf.float32)
            losses = {
                "content": weighted_mean(content) if content else zero,
                "style": weighted_mean(style) if style else zero,
            }
            statistics = (
                weights["content_weight"] * losses["content"]
                + weights["style_weight"] * losses["style"]
            )
            objective = statistics * float(height * width) * scale
        sum_grads, error_grads = tape.gradient(objective, [sums, errors])
        tv, gradient = _total_variation_and_grad(image)
        losses["tv"] = tf.constant(tv, tf.float32)
        losses["total"] = statistics + weights["tv_weight"] * losses["tv"]
        gradient *= weights["tv_weight"] * float(height * width) * scale
        for tile in self._tiles:
            share = self._share_fn(
                *self._tile_arguments(image, tile), content_targets, sum_grads, error_grads
            )
            gradient[:, tile.top : tile.bottom, tile.left : tile.right, :] += share.numpy()
        return losses, gradient

    def _apply(self, grad, loss):
        current = tf.identity(self._variable)
        self._optimizer.apply_gradients([(grad, self._variable)])
        # Projected gradient descent, as the untiled step.
        self._variable.assign(tf.clip_by_value(self._variable, 0.0, 1.0))
        self._update_average(current, loss)
        self._steps.assign_add(1)

    def run(self, targets, steps):
        history = {k: [] for k in ("content", "style", "tv", "total")}
        for _ in range(int(steps)):
            losses, grad = self._tiled_losses_and_grad(self._variable.numpy(), targets)
            # The update runs on a tensor copy: the NumPy gradient goes first, and the copy
            # before the next step (each is an image-sized array).
            grad = tf.constant(grad)
            self._apply_fn(grad, losses["total"])
            del grad
            for k in history:
                history[k].append(float(losses[k]))
        return {k: np.asarray(v, np.float32) for k, v in history.items()}

    def trace_count(self):
        return self._apply_fn.experimental_get_tracing_count()

    def value_and_grad(self, image, targets):
        batch = np.asarray(image, np.float32)[None]
        losses, grad = self._tiled_losses_and_grad(batch, targets)
        return {k: float(v) for k, v in losses.items()}, grad[0]


# Rows of a content target squared at a time: its whole square would be another target-sized
# array (at 8192 x 6144, VGG's block4_conv2 target is 1.6 GB).
_NORM_ROWS = 64


def _squared_norm(target):
    """`sum(target ** 2)` in float32, a band of rows at a time."""
    rows = int(target.shape[1])
    parts = [
        tf.reduce_sum(tf.square(tf.cast(target[:, i : i + _NORM_ROWS], tf.float32)))
        for i in range(0, rows, _NORM_ROWS)
    ]
    return tf.add_n(parts) if parts else tf.zeros((), tf.float32)


# Elements summed at a time in float64 by `_total_variation_and_grad`.
_SUM_CHUNK = 1 << 22


def _total_variation_and_grad(image):
    """`losses.total_variation_loss` of `image` (NumPy float32 `[B, H, W, C]`) and its gradient,
    in place: a gradient tape over the whole image would hold about six image-sized
    temporaries, here one difference array at a time.

    Returns:
        `(loss, gradient)`: a float, and a float32 array shaped as `image`.
    """
    gradient = np.zeros_like(image)
    total = 0.0
    for axis in (1, 2):
        if image.shape[axis] < 2:
            continue  # no neighbours in this direction: it adds 0, as in the loss
        diff = np.diff(image, axis=axis)
        flat = diff.reshape(-1)
        squares = sum(
            float(np.dot(part, part))
            for part in (
                flat[i : i + _SUM_CHUNK].astype(np.float64) for i in range(0, flat.size, _SUM_CHUNK)
            )
        )
        total += squares / flat.size
        # d/dx mean(d^2) with d[i] = x[i + 1] - x[i]: +2 d[i] / n at i + 1, -2 d[i] / n at i.
        diff *= 2.0 / flat.size
        later = [slice(None)] * image.ndim
        earlier = [slice(None)] * image.ndim
        later[axis], earlier[axis] = slice(1, None), slice(None, -1)
        gradient[tuple(later)] += diff
        gradient[tuple(earlier)] -= diff
    return total, gradient
