"""`Settings`: what every settings dataclass (`StyleConfig`, `VideoConfig`, `TrainConfig`) can
do."""

import dataclasses


class Settings:
    """What every settings dataclass (`StyleConfig`, `VideoConfig`, `TrainConfig`) can do: a
    mixin for frozen dataclasses that validate themselves in `__post_init__`."""

    def replace(self, **changes):
        """A copy with `changes` applied (and validated).

        Args:
            **changes: field names and their new values.

        Returns:
            A new instance of the same class; this one is unchanged.

        Raises:
            ConfigError: a new value is invalid.
            TypeError: a name is not a field.
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Plain-JSON dict of every setting.

        Returns:
            `{field name: value}`, tuples as lists (as they come back from JSON).
        """
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }
