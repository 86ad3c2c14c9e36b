"""The CLI's progress bar (tqdm's on a terminal, a plain line every tenth elsewhere) and the
messages written beside it."""

import io

import pytest
from cli_runner import run_inprocess

from tfstyle.cli.display import ProgressBar
from tfstyle.optimize.progress import Progress

LOSSES = {"content": 0.5, "style": 0.25, "tv": 0.125, "total": 2.0}


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _records(total, *, start=1):
    for step in range(start, total + 1):
        yield Progress(step, total, 0, (8, 8), LOSSES, elapsed_s=0.1 * step)


def test_log_file_gets_a_line_every_tenth_with_an_eta_and_no_carriage_returns():
    stream = io.StringIO()
    bar = ProgressBar(stream)
    for record in _records(40):
        bar(record)
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 10, text  # steps 4, 8, ..., 40
    assert [line.split("|")[2].split()[0] for line in lines] == [
        f"{4 * i}/40" for i in range(1, 11)
    ]
    assert lines[0].startswith(" 10%|#") and lines[-1].startswith("100%|##########|")
    # tqdm's [elapsed<remaining, rate]: an ETA on every line but the last.
    assert "<" in lines[0].split("[")[1] and "step/s" in lines[0]
    assert "total 2 (content 0.5, style 0.25, tv 0.125)" in lines[-1]


def test_terminal_gets_one_redrawn_bar_closed_at_the_last_step():
    stream = _Terminal()
    bar = ProgressBar(stream)
    for record in _records(5):
        bar(record)
    text = stream.getvalue()
    # Redrawn in place (tqdm skips redraws closer than 0.1 s), one line break: at the close.
    assert text.count("\r") >= 2 and text.endswith("\n") and text.count("\n") == 1
    assert "5/5" in text.rsplit("\r", 1)[1] and "total 2 (content 0.5" in text
    assert bar.bar is None


def test_terminal_message_gets_its_own_line_and_a_total_may_change():
    stream = _Terminal()
    bar = ProgressBar(stream)
    bar(Progress(1, 4, 0, (8, 8), LOSSES, 0.1))
    bar.write("tfstyle: error: a.png: broken")
    assert "\ntfstyle: error: a.png: broken\n" in "\n" + stream.getvalue().replace("\r", "\n")
    bar(Progress(3, 6, 0, (8, 8), LOSSES, 0.2))  # a batch's next image has more steps
    assert bar.bar.total == 6 and bar.bar.n == 3
    bar(Progress(6, 6, 0, (8, 8), LOSSES, 0.3))
    assert "6/6" in stream.getvalue().rsplit("\r", 1)[1]


@pytest.fixture
def images(tmp_path):
    import numpy as np

    from tfstyle.io import save_image

    save_image(np.random.default_rng(0).uniform(size=(24, 32, 3)), tmp_path / "c.png")
    save_image(np.random.default_rng(1).uniform(size=(16, 16, 3)), tmp_path / "s.png")
    return tmp_path


def test_cli_progress_in_a_log_file(images, capfd):
    # capfd's stderr is a file, as when a run's stderr goes to a log.
    args = ["--content", images / "c.png", "--style", images / "s.png", "--output"]
    result = run_inprocess(
        [*args, images / "o.png", "--weights", "none", "--max_size", "32", "--iterations", "10"],
        capfd,
    )
    assert result.code == 0, result.stderr
    assert "\r" not in result.stderr
    bar_lines = [line for line in result.lines if "%|" in line]
    assert len(bar_lines) == 10 and "10/10" in bar_lines[-1], result.stderr
    assert result.lines[-1].startswith("saved ")
