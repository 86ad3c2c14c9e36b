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
   gradient with respect to the sums (small `[C, C]` matrices and scalars) and the image (total
   variation, cheap on the whole image);
3. a forward and backward pass over the tiles of `<dL/dS, S_core> + <dL/dE, E_core>`, whose
   gradient with respect to the tile's pixels is the core's share of the whole image's gradient
   (halo pixels included: the core's features depend on them); the shares add up to the
   gradient of the untiled step;
4. one optimizer update of the whole image.

So about one more forward pass than an untiled step, plus the halos' overlap. Only the "gram"
style loss (mean/covariance and sliced Wasserstein would need their own sums), no masks, no
temporal loss, no float16 loss scaling: `StyleConfig` and `stylize` refuse those with tiles.
"""

import numpy as np
import tensorflow as tf

from tfstyle.ops.losses import relative_squared_error, total_variation_loss, weighted_mean
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
        pixels = image[:, tile.top : tile.bottom, tile.left : tile.right, :]
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
        """`(losses, gradient)` of `scale` times the objective at `image` `[1, H, W, 3]`, as the
        untiled `_losses_and_grad` gives them."""
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
            tape.watch([image, sums, errors])
            style = {}
            for name, value in sums.items():
                positions = (height // layer_stride(name)) * (width // layer_stride(name))
                gram = value[None] / float(positions)
                style[name] = (
                    relative_squared_error(gram, targets["style"][name]),
                    weights["style_layer_weights"][name],
                )
            content = {
                name: (
                    value
                    / (
                        tf.reduce_sum(tf.square(tf.cast(content_targets[name], tf.float32)))
                        + EPSILON
                    ),
                    1.0,
                )
                for name, value in errors.items()
            }
            zero = tf.zeros((), tf.float32)
            losses = {
                "content": weighted_mean(content) if content else zero,
                "style": weighted_mean(style) if style else zero,
                "tv": total_variation_loss(image),
            }
            losses["total"] = (
                weights["content_weight"] * losses["content"]
                + weights["style_weight"] * losses["style"]
                + weights["tv_weight"] * losses["tv"]
            )
            objective = losses["total"] * float(height * width) * scale
        image_grad, sum_grads, error_grads = tape.gradient(objective, [image, sums, errors])
        gradient = np.array(image_grad)
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
            losses, grad = self._tiled_losses_and_grad(tf.identity(self._variable), targets)
            self._apply_fn(tf.constant(grad), losses["total"])
            for k in history:
                history[k].append(float(losses[k]))
        return {k: np.asarray(v, np.float32) for k, v in history.items()}

    def trace_count(self):
        return self._apply_fn.experimental_get_tracing_count()

    def value_and_grad(self, image, targets):
        batch = tf.constant(np.asarray(image, np.float32)[None])
        losses, grad = self._tiled_losses_and_grad(batch, targets)
        return {k: float(v) for k, v in losses.items()}, grad[0]
