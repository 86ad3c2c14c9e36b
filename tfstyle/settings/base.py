"""`Settings`: what every settings dataclass (`StyleConfig`, `VideoConfig`, `TrainConfig`) can
do."""

import dataclasses


class Settings:
    """What every settings dataclass (`StyleConfig`, `fast.config.TrainConfig`) can do."""

    def replace(self, **changes):
        """A copy with `changes` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Plain-JSON dict of every setting."""
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }
