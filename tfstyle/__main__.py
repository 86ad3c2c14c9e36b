"""`python -m tfstyle`: the `tfstyle` command."""

from tfstyle.cli.app import run

run()
