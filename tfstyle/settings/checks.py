"""Checks of single settings (numbers, integers, choices), each refused with one `ConfigError`
line. Every settings class validates its fields with these; imports nothing of tfstyle but its
errors.
"""

import math

from tfstyle.errors import ConfigError


def check_choice(name, value, allowed):
    """Raise ConfigError unless `value` is one of `allowed`.

    Args:
        name: the setting's name, for the message.
        value: the value given.
        allowed: the strings accepted (listed in the message).

    Raises:
        ConfigError: `value` is not in `allowed`.
    """
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def check_number(name, value, *, low=None, high=None, low_open=False, high_open=False):
    """Raise ConfigError unless `value` is a finite number within the bounds (open or closed).

    Args:
        name: the setting's name, for the message.
        value: the value given; a bool is not a number here.
        low, high: the bounds, or None for none.
        low_open, high_open: exclude the bound itself.

    Raises:
        ConfigError: `value` is not a finite int or float, or is out of bounds.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number; got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        bounds = (
            f"{lo}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{hi}"
        )
        raise ConfigError(f"{name} must be in {bounds}; got {value!r}")


def check_int(name, value, *, low):
    """Raise ConfigError unless `value` is an integer (not a bool) of at least `low`.

    Args:
        name: the setting's name, for the message.
        value: the value given.
        low: the smallest value accepted.

    Raises:
        ConfigError: `value` is not an int, or is below `low`.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer; got {value!r}")
    if value < low:
        raise ConfigError(f"{name} must be at least {low}; got {value}")
