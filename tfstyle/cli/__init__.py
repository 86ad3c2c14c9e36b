"""The `tfstyle` command (also `scripts/stylize.py`): flags -> StyleConfig -> stylize() -> files.

    tfstyle --content photo.jpg --style painting.jpg --output out.png      # one image
    tfstyle --content photos/ --style 'art/*.jpg' --output_dir out/        # every pair
    tfstyle export --output saved_models/NAME/1 [settings]                 # a SavedModel

A thin shell: it parses flags, loads the images, calls the library once and saves. The library
itself never reads flags or prints. Modules, each importing only those above it in this list
and the library:

    flags.py     every flag; `config_from_flags`, the checked inputs of an image run
    display.py   the progress bar and messages on stderr
    stylize.py   one image (--output)          batch.py   every pair (--output_dir)
    export.py    `tfstyle export`: a SavedModel
    app.py       `COMMANDS`, the table of named commands; `main`, `run` (the console script)

Exit status:
    0    done: the image and its JSON report are written (every output of a batch); or
         nothing to do: every output of a batch already exists (one line says so).
    1    a user error (bad flag, setting, file; an existing --output without --overwrite; a
         non-finite loss): one `tfstyle: error:` line
         on stderr, and no output written (except the last finite image after a non-finite
         loss, which the line names). In a batch: one line per failed output, the others are
         written.
    130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM (128 + the signal, as shells report):
         the current image is saved to --output (kept in the checkpoint instead when --output
         holds a finished image) and a checkpoint to <output stem>.ckpt.npz;
         the same command with --resume continues from it. A batch keeps its finished outputs
         and continues where it stopped when run again.
"""

from tfstyle.cli.app import COMMANDS, main, run
from tfstyle.cli.flags import config_from_flags

__all__ = ["COMMANDS", "config_from_flags", "main", "run"]
