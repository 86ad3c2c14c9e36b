"""The jobs of a batch pipeline: content x style `Pair`s, from file lists or a manifest."""

import csv
import dataclasses
import io
import json
import os

from tfstyle.errors import ConfigError
from tfstyle.io import filesystems as fs
from tfstyle.io.paths import file_stem, output_name
from tfstyle.settings.style import DEFAULTS, StyleConfig

# Columns of a manifest that are not settings.
PAIR_COLUMNS = ("content", "style")
_SETTINGS = {f.name for f in dataclasses.fields(StyleConfig)}


@dataclasses.dataclass(frozen=True)
class Pair:
    """One content x style job: the two files and the settings that differ for it.

    Attributes:
        content, style: paths on any Beam filesystem.
        settings: `((name, value), ...)` of `StyleConfig` fields for this pair only, sorted.
    """

    content: str
    style: str
    settings: tuple = ()

    @property
    def name(self):
        return output_name(self.content, file_stem(self.style))


def pairs(contents, styles):
    """Every content x every style. Each argument: files, folders or glob patterns.

    Raises:
        ConfigError: a list matches nothing, or two pairs would write the same output.
    """
    found = {}
    for role, patterns in (("content", contents), ("style", styles)):
        found[role] = fs.match(patterns)
        if not found[role]:
            raise ConfigError(f"no {role} files match {', '.join(map(str, patterns))}")
    return _unique([Pair(c, s) for c in found["content"] for s in found["style"]])


def read_manifest(path, *, config=DEFAULTS):
    """The pairs of a manifest: CSV with a header, or JSON Lines (`.jsonl`), with columns
    `content`, `style` and any `StyleConfig` field (e.g. `iterations`, `style_weight`) whose
    value applies to that row only (an empty CSV cell: the default). CSV values are read as
    JSON where they parse (`50`, `0.5`, `true`, `["block1_conv1"]`), else as text. A relative
    `content` or `style` path is relative to the manifest's folder (not to the working
    directory, which a Beam worker does not share); every file must exist.

    Raises:
        ConfigError: a row lacks a column, names an unknown setting or one `config` refuses,
            a file that does not exist, a JSON Lines line that is not a JSON object, or a CSV row
            with more cells than the header (the row's number says which), before any work.
    """
    text = fs.read_bytes(path).decode("utf-8-sig")
    name = os.fsdecode(path)
    rows = _jsonl_rows(text, name) if name.endswith(".jsonl") else _csv_rows(text, name)
    result = []
    base = _folder(name)
    for number, row in enumerate(rows, start=1):
        pair = _manifest_pair(row, number=number, name=name, config=config)
        result.append(
            dataclasses.replace(
                pair, content=_resolve(pair.content, base), style=_resolve(pair.style, base)
            )
        )
    if not result:
        raise ConfigError(f"the manifest {name} has no rows")
    _check_exist(result, name)
    return _unique(result)


def _folder(manifest):
    """The folder a manifest's relative paths start from."""
    if "://" in manifest:
        return manifest.rsplit("/", 1)[0]
    return os.path.dirname(os.path.abspath(manifest))


def _resolve(path, base):
    """`path` as it is when absolute or a URL (`gs://...`), else joined to `base`."""
    if "://" in path or os.path.isabs(path):
        return path
    if "://" in base:
        return f"{base}/{path}"
    return os.path.normpath(os.path.join(base, path))


def _check_exist(found, name):
    """Every file of the manifest exists, checked here rather than by the workers (which would
    dead-letter each row after the pipeline started)."""
    known, missing = {}, []
    for number, pair in enumerate(found, start=1):
        for role in PAIR_COLUMNS:
            path = getattr(pair, role)
            if path not in known:
                known[path] = fs.exists(path)
            if not known[path]:
                missing.append(f"{name} row {number}: {role} file {path} not found")
    if missing:
        more = f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else ""
        raise ConfigError(f"{missing[0]}{more}; relative paths start from the manifest's folder")


def _jsonl_rows(text, name):
    rows = []
    # Numbered as rows, as in the other messages: blank lines do not count.
    for number, line in enumerate((line for line in text.splitlines() if line.strip()), 1):
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"{name} row {number} is not valid JSON ({exc})") from None
        if not isinstance(row, dict):
            raise ConfigError(
                f'{name} row {number} is not a JSON object ({{"content": ..., "style": ...}})'
            )
        rows.append(row)
    return rows


def _csv_rows(text, name):
    rows = []
    for number, row in enumerate(csv.DictReader(io.StringIO(text)), start=1):
        # DictReader files the cells beyond the header under the key None.
        if None in row:
            raise ConfigError(
                f"{name} row {number} has {len(row[None])} more cell(s) than the header's "
                f"{len(row) - 1} columns"
            )
        rows.append({k: _csv_value(v) for k, v in row.items() if v not in ("", None)})
    return rows


def _manifest_pair(row, *, number, name, config):
    where = f"{name} row {number}"
    missing = [k for k in PAIR_COLUMNS if not row.get(k)]
    if missing:
        raise ConfigError(f"{where} has no {' or '.join(missing)}")
    settings = {k: v for k, v in row.items() if k not in PAIR_COLUMNS}
    unknown = sorted(set(settings) - _SETTINGS)
    if unknown:
        raise ConfigError(f"{where}: unknown settings {', '.join(unknown)}")
    try:
        config.replace(**as_fields(settings))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return Pair(str(row["content"]), str(row["style"]), tuple(sorted(settings.items())))


def as_fields(settings):
    # JSON has lists where StyleConfig keeps tuples.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}


def _csv_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _unique(found):
    names = {}
    for pair in found:
        if pair.name in names:
            other = names[pair.name]
            raise ConfigError(
                f"{other.content} + {other.style} and {pair.content} + {pair.style} would both "
                f"be saved as {pair.name}; rename one of the files"
            )
        names[pair.name] = pair
    return found
