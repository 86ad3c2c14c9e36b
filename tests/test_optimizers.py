"""Learning-rate schedules and optimizer construction."""

import itertools
import math

import keras
import numpy as np
import pytest
from keras import ops

from tfstyle.optimize.optimizers import OneCycle, PreconditionedSGD, make_optimizer, make_schedule
from tfstyle.settings.style import SCHEDULES


def _at(schedule, step):
    if isinstance(schedule, float):
        return schedule
    return float(ops.convert_to_numpy(schedule(step)))


def test_one_cycle_hand_computed():
    schedule = OneCycle(1.0, 100, pct_start=0.3, div_factor=25.0, final_div=1e4)
    assert _at(schedule, 0) == pytest.approx(1.0 / 25.0, rel=1e-5)
    assert _at(schedule, 30) == pytest.approx(1.0, rel=1e-5)
    # Halfway up the cosine warm-up: start + (max - start) / 2.
    assert _at(schedule, 15) == pytest.approx(0.04 + 0.96 / 2, rel=1e-5)
    # Halfway down: end + (max - end) / 2.
    assert _at(schedule, 65) == pytest.approx(1e-4 + (1 - 1e-4) / 2, rel=1e-4)
    assert _at(schedule, 100) == pytest.approx(1e-4, rel=1e-3)


def test_one_cycle_serialises():
    schedule = OneCycle(0.5, 40, pct_start=0.25)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, OneCycle)
    assert _at(restored, 7) == pytest.approx(_at(schedule, 7))


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("constant", 1.0, 1.0),
        ("exponential", 1.0, 0.96 ** (200 / 100)),
        ("piecewise", 1.0, 0.1),
        ("polynomial", 1.0, 0.01),
        ("cosine", 1.0, 0.01),
        ("one_cycle", 0.04, 1e-4),
    ],
)
def test_schedule_start_and_end(name, start, end):
    schedule = make_schedule(name, 1.0, 200)
    assert _at(schedule, 0) == pytest.approx(start, rel=1e-3)
    assert _at(schedule, 200) == pytest.approx(end, rel=1e-2)


def test_cosine_restarts_restarts():
    schedule = make_schedule("cosine_restarts", 1.0, 200)
    values = [_at(schedule, s) for s in range(0, 200, 5)]
    assert any(later > earlier * 1.5 for earlier, later in itertools.pairwise(values))
    assert math.isclose(values[0], 1.0, rel_tol=1e-5)


# Hand-computed rates at learning rate 0.1 over 50 steps: {schedule: {step: rate}}.
SCHEDULE_RATES = {
    "constant": {0: 0.1, 49: 0.1},
    "exponential": {0: 0.1, 50: 0.1 * 0.96**0.5},  # x0.96 per 100 steps
    "piecewise": {0: 0.1, 30: 0.1 / 3, 49: 0.01},  # bounds at steps 25 and 37
    "polynomial": {0: 0.1, 25: (0.1 + 0.001) / 2, 50: 0.001},  # linear to lr / 100
    "cosine": {0: 0.1, 25: 0.1 * (0.01 + 0.99 * 0.5), 50: 0.001},  # alpha 0.01
    # Periods of 50 // 4 steps, each restart x0.7 above the alpha floor (0.01 of the rate).
    "cosine_restarts": {0: 0.1, 12: 0.1 * (0.7 * 0.99 + 0.01)},
    "one_cycle": {0: 0.1 / 25, 15: 0.1, 50: 0.1 / 1e4},  # warm-up over 30% of the steps
}


def test_every_configured_schedule_is_built():
    # It checked isinstance only; now each schedule's rate at hand-computed steps, and the
    # optimizer built with it starts at its step-0 rate.
    assert sorted(SCHEDULE_RATES) == sorted(SCHEDULES)
    for name, rates in SCHEDULE_RATES.items():
        schedule = make_schedule(name, 0.1, 50)
        for step, rate in rates.items():
            value = schedule if isinstance(schedule, float) else schedule(step)
            np.testing.assert_allclose(float(value), rate, rtol=1e-5, err_msg=f"{name} {step}")
        for optimizer in ("sgd", "adam"):
            built = make_optimizer(name=optimizer, learning_rate=0.1, schedule=name, total_steps=50)
            assert isinstance(built, keras.optimizers.Optimizer)
            np.testing.assert_allclose(
                float(ops.convert_to_numpy(built.learning_rate)), rates[0], rtol=1e-5
            )


def test_plain_sgd_step_follows_the_schedule():
    """One raw-gradient SGD update moves a variable by exactly lr * gradient at step 0."""
    optimizer = make_optimizer(
        name="sgd",
        learning_rate=0.5,
        schedule="one_cycle",
        total_steps=10,
        momentum=0.0,
        precondition="none",
    )
    variable = keras.Variable(np.zeros(3, np.float32))
    optimizer.build([variable])
    optimizer.apply_gradients([(ops.ones(3), variable)])
    np.testing.assert_allclose(ops.convert_to_numpy(variable), -0.5 / 25.0, rtol=1e-5)


def test_preconditioned_sgd_steps_are_independent_of_the_gradient_scale():
    """Two Nesterov steps (momentum 0.9) on gradients divided by their bias-corrected RMS:
    step 1 moves by (1 + 0.9) lr, step 2 by 0.9 * 1.9 lr + lr = 2.71 lr, for gradients of any
    size (the second moment of a constant gradient g is g^2 after bias correction)."""
    optimizer = make_optimizer(name="sgd", learning_rate=0.01, schedule="constant", momentum=0.9)
    assert isinstance(optimizer, PreconditionedSGD)
    variable = keras.Variable(np.zeros(3, np.float32))
    optimizer.build([variable])
    gradient = ops.convert_to_tensor(np.array([1e3, 1.0, -1e-3], np.float32))
    optimizer.apply_gradients([(gradient, variable)])
    np.testing.assert_allclose(ops.convert_to_numpy(variable), [-0.019, -0.019, 0.019], rtol=1e-4)
    optimizer.apply_gradients([(gradient, variable)])
    expected = 0.01 * (1.9 + 2.71)
    np.testing.assert_allclose(
        ops.convert_to_numpy(variable), [-expected, -expected, expected], rtol=1e-4
    )


def test_lbfgs_is_not_a_keras_optimizer():
    with pytest.raises(ValueError, match="sgd' and 'adam'"):
        make_optimizer(name="lbfgs", learning_rate=1.0, schedule="constant", total_steps=5)
