"""The Keras example's style-transfer step, re-implemented faithfully for benchmarks.

keras-team/keras-io `examples/generative/neural_style_transfer.py` (fchollet): content, style
and generated image are concatenated into one batch of 3 and run through VGG19
(`include_top=False`, a dict of every layer's output, so the whole network to block5_pool runs)
on EVERY step; content loss at block5_conv2 (weight 2.5e-8, plain sum of squares), style loss at
block1_conv1..block5_conv1 (Gram sums over `4 * 3^2 * (H W)^2`, the 3 channels hard-coded as in
the example, weight 1e-6 averaged over the layers), total variation with exponent 1.25 (weight
1e-6); SGD with ExponentialDecay(100, 100, 0.96), optimising the image in caffe-preprocessed
space. The loss and gradient are compiled (`tf.function` there; `jax.jit` on the JAX backend),
the optimizer update runs outside, once per step, as in the example.

Timing only: the benchmark uses random weights. Not part of the library.
"""

import keras
import numpy as np
from keras import ops

CONTENT_LAYER = "block5_conv2"
STYLE_LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")
CONTENT_WEIGHT = 2.5e-8
STYLE_WEIGHT = 1e-6
TV_WEIGHT = 1e-6
BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)


def preprocess(image):
    """RGB float [H, W, 3] in [0, 1] to a caffe batch [1, H, W, 3] (as vgg19.preprocess_input)."""
    return (np.asarray(image, np.float32)[None, ..., ::-1] * 255.0 - BGR_MEAN).astype(np.float32)


def deprocess(batch):
    """Inverse of `preprocess`, clipped to [0, 1]."""
    return np.clip((np.asarray(batch)[0] + BGR_MEAN)[..., ::-1] / 255.0, 0.0, 1.0)


def _gram(x):
    features = ops.reshape(ops.transpose(x, (2, 0, 1)), (ops.shape(x)[2], -1))
    return ops.matmul(features, ops.transpose(features))


def _losses(features, combination, rows, cols):
    features = {k: ops.cast(v, "float32") for k, v in features.items()}
    base, generated = features[CONTENT_LAYER][0], features[CONTENT_LAYER][2]
    loss = CONTENT_WEIGHT * ops.sum(ops.square(generated - base))
    size = rows * cols
    for name in STYLE_LAYERS:
        style, generated = features[name][1], features[name][2]
        style_loss = ops.sum(ops.square(_gram(style) - _gram(generated))) / (
            4.0 * (3**2) * (size**2)
        )
        loss = loss + (STYLE_WEIGHT / len(STYLE_LAYERS)) * style_loss
    x = combination
    a = ops.square(x[:, : rows - 1, : cols - 1, :] - x[:, 1:, : cols - 1, :])
    b = ops.square(x[:, : rows - 1, : cols - 1, :] - x[:, : rows - 1, 1:, :])
    return loss + TV_WEIGHT * ops.sum(ops.power(a + b, 1.25))


class KerasExampleStep:
    """One object per run: `step()` does one optimisation step, `image()` returns the result.

    Args:
        content, style: RGB float images `[H, W, 3]` in [0, 1]; the style image must already
            have the content's size (the example resizes both to the same rows and columns).
        network: "vgg19" (the example's) or "vgg16".
        weights: passed to `keras.applications` (None for random weights).
    """

    def __init__(self, content, style, *, network="vgg19", weights=None):
        factory = keras.applications.VGG19 if network == "vgg19" else keras.applications.VGG16
        model = factory(include_top=False, weights=weights)
        outputs = {layer.name: layer.output for layer in model.layers}
        self._extractor = keras.Model(inputs=model.inputs, outputs=outputs)
        self._rows, self._cols = content.shape[:2]
        self._base = ops.convert_to_tensor(preprocess(content))
        self._style = ops.convert_to_tensor(preprocess(style))
        self._combination = keras.Variable(preprocess(content), name="combination")
        self._optimizer = keras.optimizers.SGD(
            keras.optimizers.schedules.ExponentialDecay(
                initial_learning_rate=100.0, decay_steps=100, decay_rate=0.96
            )
        )
        self._optimizer.build([self._combination])
        self._loss_and_grads = _compile(self._loss_and_grads_fn, self._extractor)

    def _loss(self, combination, weights=None):
        batch = ops.concatenate([self._base, self._style, combination], axis=0)
        if weights is None:
            features = self._extractor(batch)
        else:
            features, _ = self._extractor.stateless_call(*weights, batch)
        return _losses(features, combination, self._rows, self._cols)

    def _loss_and_grads_fn(self, combination, weights=None):
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                tape.watch(combination)
                loss = self._loss(combination)
            return loss, tape.gradient(loss, combination)
        import jax

        return jax.value_and_grad(lambda x: self._loss(x, weights))(combination)

    def step(self):
        """One step: compiled loss and gradient, then the optimizer's update (as the example)."""
        loss, grads = self._loss_and_grads(self._combination.value)
        self._optimizer.apply_gradients([(grads, self._combination)])
        return loss

    def image(self):
        return deprocess(ops.convert_to_numpy(self._combination.value))

    def lower(self):
        """JAX only: the compiled loss-and-gradient program (for XLA's memory analysis)."""
        return self._loss_and_grads.lower(self._combination.value)


def _compile(function, extractor):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # The example's `@tf.function` (no XLA).
        return tf.function(function)
    if backend == "jax":
        return _JaxCompiled(function, extractor)
    raise NotImplementedError(f"no baseline for the {backend} backend")


class _JaxCompiled:
    """The JAX counterpart of `tf.function`: `jax.jit`, with the weights as arguments (as Keras'
    JAX trainer passes them)."""

    def __init__(self, function, extractor):
        import jax

        self._function = jax.jit(function)
        self._weights = (
            [v.value for v in extractor.trainable_variables],
            [v.value for v in extractor.non_trainable_variables],
        )

    def __call__(self, combination):
        return self._function(combination, self._weights)

    def lower(self, combination):
        return self._function.lower(combination, self._weights)
