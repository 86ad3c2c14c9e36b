"""The 0.1 name of `tfstyle.io`, kept so that code written against 0.1 still runs.

New code imports `tfstyle.io` (or `tfstyle.load_image` / `tfstyle.save_image`); this module
only re-exports its public names and will not grow.
"""

from tfstyle.io import *  # noqa: F403
from tfstyle.io import __all__  # noqa: F401
