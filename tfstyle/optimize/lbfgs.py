"""L-BFGS for image optimisation: scipy's L-BFGS-B with the pixel bounds [0, 1].

jcjohnson/neural-style's default optimiser. scipy's implementation is well kept and handles the
box constraints exactly (projected line search), which beats clipping after an unconstrained
step. The value and gradient come from the backend's compiled function; only the L-BFGS
two-loop recursion runs on the host, in float64.
"""

import numpy as np
from scipy import optimize

# Stored correction pairs: neural-style and crowsonkb both use 100 for images.
HISTORY_SIZE = 100


def minimize_lbfgs(value_and_grad, image, *, iterations, callback=None):
    """Minimise the objective from `image` for at most `iterations` L-BFGS iterations.

    Args:
        value_and_grad: `f(image [H, W, 3] float32) -> (losses dict, gradient [H, W, 3])`,
            where the gradient is that of the scaled objective (`losses["total"] * H * W`).
        image: float32 `[H, W, 3]` starting point in [0, 1].
        iterations: the iteration limit (each iteration takes one or more evaluations).
        callback: called as `callback(losses, image)` after each iteration with the iterate
            and its losses; returning True stops early.

    Returns:
        `(image, evaluations)`: the final iterate and the number of function evaluations.
    """
    shape = image.shape
    pixels = shape[0] * shape[1]
    last = {}

    def fun(flat):
        losses, grad = value_and_grad(flat.reshape(shape).astype(np.float32))
        last.update(losses)
        return losses["total"] * pixels, grad.astype(np.float64).ravel()

    def on_iteration(intermediate_result):
        iterate = intermediate_result.x.reshape(shape).astype(np.float32)
        if callback is not None and callback(dict(last), iterate):
            raise StopIteration

    result = optimize.minimize(
        fun,
        np.asarray(image, np.float64).ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=optimize.Bounds(0.0, 1.0),
        callback=on_iteration,
        # Tolerances off: the iteration budget decides, as in neural-style.
        options={"maxiter": int(iterations), "maxcor": HISTORY_SIZE, "ftol": 0.0, "gtol": 0.0},
    )
    return result.x.reshape(shape).astype(np.float32), int(result.nfev)
