"""Stylize an image from the command line: the same program as the installed `tfstyle` command.

python scripts/stylize.py --content photo.jpg --style painting.jpg --output out.png
"""

from tfstyle.cli import run

if __name__ == "__main__":
    run()
