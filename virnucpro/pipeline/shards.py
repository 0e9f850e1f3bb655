"""Job-array shards and `virnucpro merge`.

`--shard K/N` runs only the blocks whose index is K-1 modulo N. Block boundaries depend only on the
input and the block settings, so every shard cuts the input exactly as a single run would, and each
block's bytes in the result files are the same as in a single run. A shard records where each of its
blocks starts and ends in every result file (shard.json); merge copies those byte ranges back in
block order, which gives files identical to one unsharded run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from virnucpro.errors import VirnucproError
from virnucpro.outputs.jsonfile import fsync_directory, write_json_atomic
from virnucpro.outputs.paths import OutputPaths

SHARD_FILE = "shard.json"


class MergeError(VirnucproError):
    """Shard directories that do not make up one complete run."""


@dataclass
class ShardLog:
    merge_key: str  # fingerprint of inputs + parameters without the shard: equal for all shards of a run
    shard: int
    of: int
    start_offsets: dict[str, int] = field(default_factory=dict)  # sizes right after the headers
    blocks: list = field(default_factory=list)  # [block_index, {file: size after the block}]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ShardLog:
        return cls(**data)

    def save(self, outdir: Path) -> None:
        write_json_atomic(Path(outdir) / SHARD_FILE, self.to_json())


def parse_shard(text: str) -> tuple[int, int]:
    """`K/N` with 1 <= K <= N."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise VirnucproError(f"--shard {text!r}: use K/N, e.g. 3/10") from None
    if not 1 <= k <= n:
        raise VirnucproError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def merge_shards(shard_dirs: list[Path], outdir: Path) -> list[Path]:
    """Write the result files of a whole run from its shard directories (all N of them)."""
    logs = [_read_log(Path(d)) for d in shard_dirs]
    _check_complete(logs, shard_dirs)
    order = sorted(((index, shard_dir, log, position) for shard_dir, log in zip(shard_dirs, logs)
                    for position, (index, _) in enumerate(log.blocks)), key=lambda item: item[0])
    outdir.mkdir(parents=True, exist_ok=True)
    names = list(logs[0].start_offsets)
    finals = []
    for name in names:
        final = outdir / name
        partial = OutputPaths.partial(final)
        with open(partial, "wb") as out:
            _copy_range(Path(shard_dirs[0]) / name, out, 0, logs[0].start_offsets[name])
            for _, shard_dir, log, position in order:
                start = log.start_offsets[name] if position == 0 else log.blocks[position - 1][1][name]
                _copy_range(Path(shard_dir) / name, out, start, log.blocks[position][1][name])
        finals.append((partial, final))
    for partial, final in finals:
        partial.replace(final)
    runs = [json.loads((Path(d) / "run.json").read_text()) for d in shard_dirs if (Path(d) / "run.json").is_file()]
    write_json_atomic(OutputPaths(outdir).run_json, {"merged_from": [str(d) for d in shard_dirs], "shards": runs})
    fsync_directory(outdir)
    return [final for _, final in finals]


def _read_log(shard_dir: Path) -> ShardLog:
    path = shard_dir / SHARD_FILE
    if not path.is_file():
        raise MergeError(f"{shard_dir} is not a finished shard (no {SHARD_FILE}; run it with --shard K/N)")
    try:
        return ShardLog.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError) as error:
        raise MergeError(f"{path} is unreadable: {error}") from None


def _check_complete(logs: list[ShardLog], shard_dirs: list[Path]) -> None:
    if len({log.merge_key for log in logs}) != 1:
        raise MergeError("the shards come from different inputs or parameters")
    total = logs[0].of
    shards = sorted(log.shard for log in logs)
    if shards != list(range(1, total + 1)):
        missing = sorted(set(range(1, total + 1)) - set(shards))
        duplicated = sorted({s for s in shards if shards.count(s) > 1})
        raise MergeError(f"need shards 1..{total} once each; missing {missing or 'none'},"
                         f" duplicated {duplicated or 'none'}")
    if len({tuple(log.start_offsets) for log in logs}) != 1:
        raise MergeError("the shards wrote different result files (e.g. one used --write-hits)")


def _copy_range(path: Path, out, start: int, end: int) -> None:
    with open(path, "rb") as source:
        source.seek(start)
        remaining = end - start
        while remaining > 0:
            data = source.read(min(remaining, 1 << 20))
            if not data:
                raise MergeError(f"{path} is shorter than its shard.json says")
            out.write(data)
            remaining -= len(data)

