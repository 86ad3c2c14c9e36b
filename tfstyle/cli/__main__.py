"""`python -m tfstyle.cli`: the `tfstyle` command."""

from tfstyle.cli.app import run

run()
