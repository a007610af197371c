"""Reading a user's CSV or Parquet file and turning its columns into a float32 matrix.

`read_table` reads with pyarrow (fast, typed, and without a float64 copy of the whole table per step);
`Encoder` imputes missing values (the median of a numeric column, the most frequent category of a
categorical one) and one-hot encodes categories, with every statistic fitted on the rows it is given
(the training split) and kept as plain values, so that it travels in a checkpoint and a new file is
transformed exactly like the training data."""

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trainlab.errors import UserError

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


# Within shared_reads(): the tables read so far, by (path, modification time, size).
_shared: dict | None = None


@contextmanager
def shared_reads():
    """Within, each file is read once (again only when it changes): tune and cv build the config, and so the
    data, many times (checks, plans, packs, trials). Outside, nothing is kept: a fit hands its table's
    memory back once the matrix is built. Tables are immutable, so sharing one is safe; forked workers
    inherit what was read before them."""
    global _shared
    if _shared is not None:  # nested: the outer one keeps the tables
        yield
        return
    _shared = {}
    try:
        yield
    finally:
        _shared = None


def read_table(path: str | Path):
    """The file as a pyarrow Table; a missing, empty or unreadable file is a UserError naming it."""
    path, kind = _readable(path)
    if _shared is None:
        return _read_table(path, kind)
    status = path.stat()
    key = (str(path.resolve()), status.st_mtime_ns, status.st_size)
    if key not in _shared:
        _shared[key] = _read_table(path, kind)
    return _shared[key]


def _read_table(path: Path, kind: str):
    import pyarrow as pa

    try:
        if kind == "csv":
            table = _read_csv(path)
        else:
            from pyarrow import parquet

            check_names(parquet.read_schema(path).names, path)  # (pyarrow refuses to read repeated names)
            table = parquet.read_table(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as error:
        raise _unreadable(path, kind, error) from None
    if table.num_rows == 0:
        raise UserError(f"{path}: the file has a header but no rows")
    check_names(table.column_names, path)
    return table


def column_names(path: str | Path) -> list[str]:
    """The file's column names, from its header or schema only (what read_table would find); a missing, empty
    or unreadable file is the same UserError as read_table's."""
    import pyarrow as pa

    path, kind = _readable(path)
    try:
        if kind == "csv":
            from pyarrow import csv

            return csv.open_csv(path, parse_options=_csv_options(path)).schema.names
        from pyarrow import parquet

        return parquet.read_schema(path).names
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as error:
        raise _unreadable(path, kind, error) from None


def check_columns(names: list[str], path, target: str, wanted: list[str]) -> None:
    """The target and the columns asked for (features, categorical) are among the file's `names`."""
    if target not in names:
        raise UserError(f"{path}: no target column {target!r}; its columns: {', '.join(names)}")
    for name in wanted:
        if name not in names:
            raise UserError(f"{path}: no column {name!r} (data.init_args.features/categorical)")


def _readable(path: str | Path) -> tuple[Path, str]:
    """(path, its format) for a file that exists and is not empty; else a UserError naming it."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UserError(f"{path}: unknown file type {path.suffix!r}; allowed: {', '.join(sorted(FORMATS))}")
    if path.is_dir():
        raise UserError(f"{path}: a folder, not a file")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty")
    if kind == "csv":
        with open(path, "rb") as stream:
            start = stream.read(4096)
        binary = next((what for magic, what in NOT_TEXT.items() if start.startswith(magic)), None)
        if binary is not None or b"\x00" in start:
            allowed = "UTF-8 CSV text or a .parquet file"
            raise UserError(f"{path}: {binary or 'binary data'}, not CSV text; allowed: {allowed}")
    return path, kind


# What a file named .csv holds when it starts so (pyarrow would read its bytes as a header and rows).
NOT_TEXT = {
    b"\x1f\x8b": "a gzip-compressed file (decompress it first)",
    b"PK\x03\x04": "a zip archive (an Excel workbook is one: export it as CSV)",
    b"BZh": "a bzip2-compressed file (decompress it first)",
    b"\xfd7zXZ\x00": "an xz-compressed file (decompress it first)",
    b"\x28\xb5\x2f\xfd": "a zstd-compressed file (decompress it first)",
    b"PAR1": "a Parquet file (name it .parquet)",
    b"\xff\xfe": "UTF-16 text (save the file as UTF-8)",
    b"\xfe\xff": "UTF-16 text (save the file as UTF-8)",
}


def _unreadable(path: Path, kind: str, error: Exception) -> UserError:
    if isinstance(error, UnicodeDecodeError):  # pyarrow decodes a CSV's header itself
        return UserError(f"{path}: cannot be read as {kind}: its header is not UTF-8 text; save the file as UTF-8")
    reason = str(error).splitlines()[0][:200]
    reason = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in reason)  # a terminal
    return UserError(f"{path}: cannot be read as {kind}: {reason}")


def _csv_options(path: Path):
    from pyarrow import csv

    return csv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")


def check_names(names: list[str], path) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        positions = [i + 1 for i, name in enumerate(names) if name == repeated[0]]
        raise UserError(
            f"{path}: column {repeated[0]!r} appears {len(positions)} times (columns "
            f"{', '.join(map(str, positions))}); every column needs its own name"
        )


def check_column_type(table, name: str, path, role: str) -> None:
    """Numbers and text (categories) are what a column may hold: a date, time, list, struct, map or bytes
    column is a UserError naming it (a model needs them turned into numbers first, which is the user's call)."""
    import pyarrow as pa

    kind = table.column(name).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if is_numeric_type(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
        return
    leave_out = "leave it out with data.init_args.features" if role == "input" else "choose another target"
    if (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)) and FORMATS.get(Path(path).suffix.lower()) == "csv":
        # pyarrow reads text it cannot decode as UTF-8 as bytes
        raise UserError(
            f"{path}: {role} column {name!r} holds text that is not UTF-8 (another encoding, such as Latin-1); "
            f"save the file as UTF-8 or {leave_out}"
        )
    if pa.types.is_temporal(kind):
        what, convert = "dates or times", "numbers (days since a reference day, or year, month and weekday columns)"
    else:
        what, convert = f"values of type {kind}", "one column per number"
    raise UserError(
        f"{path}: {role} column {name!r} holds {what}; allowed: numbers or text (categories); "
        f"convert it to {convert} or {leave_out}"
    )


def _read_csv(path: Path):
    """Block by block, numbers as float32 (half the memory of pyarrow's float64, and what training uses).
    Types come from the first block; when a later block disagrees (text in a column of numbers), the
    whole file is read again with types from every row, so that the message can name the bad value."""
    import pyarrow as pa
    from pyarrow import csv

    parse = _csv_options(path)
    try:
        reader = csv.open_csv(path, parse_options=parse, read_options=csv.ReadOptions(block_size=1 << 24))
        schema = pa.schema(
            [pa.field(f.name, pa.float32()) if pa.types.is_floating(f.type) else f for f in reader.schema]
        )
        batches = [batch.cast(schema) for batch in reader]
        return pa.Table.from_batches(batches, schema=schema)
    except pa.ArrowInvalid:
        return csv.read_csv(path, parse_options=parse)


def is_numeric(column) -> bool:
    return is_numeric_type(column.type)


def is_numeric_type(kind) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_decimal(kind)
    )


def numeric_values(table, name: str, path) -> np.ndarray:
    """A column as float64 with NaN where values are missing; a non-number is a UserError naming its row."""
    column = table.column(name)
    if is_numeric(column):
        return column.cast("float64").to_numpy(zero_copy_only=False)
    values = column.to_pylist()
    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        if value is None or value == "":
            out[row] = np.nan
            continue
        try:
            out[row] = float(value)
        except ValueError:
            raise UserError(
                f"{path}: column {name!r}, row {row + 1}: {value!r} is not a number; allowed: numbers, or list "
                f"the column in data.init_args.categorical"
            ) from None
    return out


def check_finite(values: np.ndarray, path, what: str) -> None:
    """A UserError naming the first row whose value is inf, -inf, NaN or too large for float32 (1e300)."""
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(values.astype(np.float32))
    if bad.any():
        row = int(np.argmax(bad))
        raise UserError(
            f"{path}: {what}, row {row + 1}: {float(values[row])!r} is not a finite number"
            + (f" (and {int(bad.sum()) - 1} more rows)" if bad.sum() > 1 else "")
            + "; "
            "allowed: finite numbers of magnitude below 3.4e38 (missing values are imputed or refused)"
        )


def category_values(table, name: str) -> np.ndarray:
    """A column as strings, None where missing (categories are compared as text: 1 and "1" are one)."""
    values = table.column(name).to_pylist()
    return np.array([None if v is None or v == "" else str(v) for v in values], dtype=object)


@dataclass
class Encoder:
    """Impute and one-hot encode. Output columns: the numeric ones in order, then one per category level."""

    numeric: list[str]
    categorical: list[str]
    impute: bool = True
    medians: dict[str, float] = field(default_factory=dict)
    levels: dict[str, list[str]] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(v) for v in self.levels.values())

    def output_names(self) -> list[str]:
        return self.numeric + [f"{c}={level}" for c in self.categorical for level in self.levels[c]]

    def fit(self, table, rows: np.ndarray, path) -> "Encoder":
        """Medians and category levels from these rows only (the training split)."""
        for name in self.numeric:
            values = numeric_values(table, name, path)[rows]
            finite = values[~np.isnan(values)]
            self.medians[name] = float(np.median(finite)) if len(finite) else 0.0
        for name in self.categorical:
            values = category_values(table, name)[rows]
            present = values[values != None]  # noqa: E711 (an object array compared element-wise)
            levels, counts = np.unique(present.astype(str), return_counts=True) if len(present) else ([], [])
            self.levels[name] = [str(level) for level in levels]
            self.medians[name] = str(levels[int(np.argmax(counts))]) if len(present) else ""  # the mode
        return self

    def transform(self, table, path) -> np.ndarray:
        """The float32 matrix of all rows of `table`; missing values imputed or refused."""
        out = np.zeros((table.num_rows, self.width), dtype=np.float32)
        for j, name in enumerate(self.numeric):
            values = numeric_values(table, name, path)
            missing = np.isnan(values)
            if missing.any():
                self._missing(path, name, missing)
                values = np.where(missing, self.medians[name], values)  # (pyarrow's arrays may be read-only)
            check_finite(values, path, f"column {name!r}")
            out[:, j] = values
        start = len(self.numeric)
        for name in self.categorical:
            values = category_values(table, name)
            missing = values == None  # noqa: E711
            if missing.any():
                self._missing(path, name, missing)
                values[missing] = self.medians[name]
            position = {level: k for k, level in enumerate(self.levels[name])}
            for row, value in enumerate(values):
                k = position.get(value)
                if k is not None:  # a category never seen in training: all zeros
                    out[row, start + k] = 1.0
            start += len(self.levels[name])
        return out

    def _missing(self, path, name: str, missing: np.ndarray) -> None:
        if not self.impute:
            row = int(np.argmax(missing)) + 1
            raise UserError(
                f"{path}: column {name!r}, row {row}: missing value (and {int(missing.sum()) - 1} more); "
                "allowed: a value, or data.init_args.missing impute"
            )

    def state_dict(self) -> dict:
        return {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "medians": self.medians,
            "levels": self.levels,
        }

    @classmethod
    def from_state(cls, state: dict, impute: bool) -> "Encoder":
        missing = [k for k in ("numeric", "categorical", "medians", "levels") if k not in state]
        if missing:
            raise UserError(
                f"--ckpt_path: the checkpoint's column encoder lacks {', '.join(missing)} "
                "(the file was altered or written by another version of trainlab)"
            )
        return cls(state["numeric"], state["categorical"], impute, dict(state["medians"]), dict(state["levels"]))
