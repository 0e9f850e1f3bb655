"""`virnucpro merge` of study shards (`predict --samples SHEET --shard K/N`): one OUTDIR as an
unsharded study writes it.

Samples are a study's shard unit (pipeline/study.py says why), so each sample directory of a shard
is a finished plain run: merge checks that the N shards come from one sheet (its sha256) and one
set of parameters, that each shard is there once and ran exactly its samples, copies every sample's
files (each verified against the sha256 its shard's study.json recorded, written as .partial then
renamed), and writes samples.tsv (sheet order) and study.json. study.json is untrusted input.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path

from virnucpro.fsutil import untrusted
from virnucpro.fsutil.atomic import fsync_directory, write_json_atomic
from virnucpro.fsutil.safe_files import open_exclusive, remove_file
from virnucpro.io.samplesheet import SAFE_NAME
from virnucpro.outputs.paths import OutputPaths, StudyPaths
from virnucpro.outputs.samples_table import read_samples_table, viral_fraction, write_samples_table
from virnucpro.pipeline.shards import MergeError
from virnucpro.pipeline.study_state import clean_sample_dir
from virnucpro.pipeline.study_summary import COUNTED

_COPY_BYTES = 1 << 20


def is_study_shard(directory: Path) -> bool:
    return StudyPaths(directory).study_json.is_file()


def merge_study_shards(shard_dirs: list[Path], outdir: Path, force: bool) -> list[Path]:
    """Every sample's files, samples.tsv and study.json in OUTDIR; returns the files written."""
    studies = [_read_study(Path(d)) for d in shard_dirs]
    _check_one_study(studies, shard_dirs)
    _check_output(outdir, shard_dirs, [s["name"] for s in studies[0]["samples"]], force)
    owner = {entry["name"]: (shard_dir, entry) for shard_dir, study in zip(shard_dirs, studies)
             for entry in study["samples"] if entry["status"] == "done"}
    written = []
    for name in (entry["name"] for entry in studies[0]["samples"]):
        shard_dir, entry = owner[name]
        written += _copy_sample(StudyPaths(shard_dir).sample_dir(name), StudyPaths(outdir).sample_dir(name),
                                entry["files"])
    rows = {row["sample"]: row for shard_dir in shard_dirs for row in read_samples_table(
        StudyPaths(shard_dir).samples_table)}
    order = [entry["name"] for entry in studies[0]["samples"]]
    if sorted(rows) != sorted(order):
        raise MergeError("the shards' samples.tsv rows do not match their study.json samples; rerun the shards")
    paths = StudyPaths(outdir)
    write_samples_table(paths.samples_table, [rows[name] for name in order])
    sums = {column: sum(int(rows[name][column]) for name in order) for column in COUNTED}
    first = studies[0]
    write_json_atomic(paths.study_json, {
        "merged_from": [str(d) for d in shard_dirs], "sheet": first["sheet"], "sheet_sha256": first["sheet_sha256"],
        "shard": None, "samples": [{**owner[name][1]} for name in order],
        "totals": {"samples": len(order), **sums, "viral_fraction": viral_fraction(sums["virus"], sums["records"])},
        "parameters": {k: v for k, v in first["parameters"].items() if k != "shard"},
        "shards": [{"shard": s["shard"], "timings_seconds": s.get("timings_seconds"),
                    "gpu_utilization": s.get("gpu_utilization")} for s in studies]})
    fsync_directory(outdir)
    return [*written, paths.samples_table, paths.study_json]


def _read_study(shard_dir: Path) -> dict:
    path = StudyPaths(shard_dir).study_json
    try:
        study = untrusted.load_json_object(path)
        for key, kind in (("sheet", str), ("sheet_sha256", str), ("samples", list), ("parameters", dict)):
            untrusted.of_type(study.get(key), kind, key)
        shard = study.get("shard")
        if not (isinstance(shard, list) and len(shard) == 2 and
                1 <= untrusted.count(shard[0], "shard") <= untrusted.count(shard[1], "shard")):
            raise untrusted.Invalid("it is not from a --shard K/N study (shard is not [K, N])")
        names = set()
        for entry in study["samples"]:
            untrusted.of_type(entry, dict, "a sample")
            name = untrusted.of_type(entry.get("name"), str, "a sample name")
            if not SAFE_NAME.fullmatch(name) or entry.get("status") not in ("done", "not in this shard"):
                raise untrusted.Invalid(f"sample {name[:40]!r} has a bad name or status")
            if name in names:
                raise untrusted.Invalid(f"sample {name[:40]!r} is listed twice")
            names.add(name)
            files = untrusted.of_type(entry.get("files"), dict, f"files of {name}")
            untrusted.digests(files, f"files of {name}", set(files))
            if not set(files) <= {p.name for p in OutputPaths(Path("/")).owned_files()}:
                raise untrusted.Invalid(f"files of {name} name a file virnucpro does not write")
    except untrusted.Invalid as error:
        raise MergeError(f"{path} is unusable: {error}; rerun that shard") from None
    except OSError as error:
        raise MergeError(f"cannot read {path}: {error.strerror}") from None
    return study


def _check_one_study(studies: list[dict], shard_dirs: list[Path]) -> None:
    """One sheet, one set of parameters, shards 1..N once each, each with exactly its samples done."""
    first, first_dir = studies[0], shard_dirs[0]
    n = first["shard"][1]
    for shard_dir, study in zip(shard_dirs, studies):
        same_parameters = ({k: v for k, v in study["parameters"].items() if k != "shard"} ==
                           {k: v for k, v in first["parameters"].items() if k != "shard"})
        if study["sheet_sha256"] != first["sheet_sha256"] or study["shard"][1] != n or not same_parameters:
            what = ("another sample sheet" if study["sheet_sha256"] != first["sheet_sha256"] else
                    f"--shard of {study['shard'][1]}, not {n}" if study["shard"][1] != n else "other parameters")
            raise MergeError(f"{shard_dir} and {first_dir} come from different studies: {what}")
        names = [entry["name"] for entry in study["samples"]]
        if names != [entry["name"] for entry in first["samples"]]:
            raise MergeError(f"{shard_dir} and {first_dir} list different samples")
        k = study["shard"][0]
        for index, entry in enumerate(study["samples"]):
            if (entry["status"] == "done") != (index % n == k - 1):
                raise MergeError(f"{shard_dir} (shard {k}/{n}) did not run exactly its samples (sample"
                                 f" {entry['name']}); rerun that shard with --resume")
    shards = sorted(study["shard"][0] for study in studies)
    if shards != list(range(1, len(shards) + 1)) or n != len(shards):
        # at most 10 missing named: a study.json may claim n = 2**61 (no list of n numbers is built)
        missing = list(itertools.islice((k for k in range(1, n + 1) if k not in shards), 10))
        more = ", ..." if n - len(set(shards)) > len(missing) else ""
        duplicated = sorted({s for s in shards if shards.count(s) > 1})
        named = f"[{', '.join(map(str, missing))}{more}]" if missing else "none"
        raise MergeError(f"need shards 1..{n:,} once each; missing {named}, duplicated {duplicated or 'none'}")


def _check_output(outdir: Path, shard_dirs: list[Path], names: list[str], force: bool) -> None:
    """Never into a shard; over an earlier study only with --force (which removes exactly its files)."""
    if not outdir.exists():
        return
    if any(os.path.samefile(outdir, shard_dir) for shard_dir in shard_dirs):
        raise MergeError(f"the output directory {outdir} is one of the shard directories; choose another")
    paths = StudyPaths(outdir)
    for name in names:  # a sample's files are copied into OUTDIR/SAMPLE: never through a link
        if paths.sample_dir(name).is_symlink():
            raise MergeError(f"{paths.sample_dir(name)} is a symbolic link: remove it or choose another output"
                             " directory")
    existing = [p for p in paths.owned_files() if os.path.lexists(p)]
    existing += [p for name in names for p in OutputPaths(paths.sample_dir(name)).owned_files() if os.path.lexists(p)]
    if existing and not force:
        raise MergeError(f"{existing[0]} already exists: use --force to overwrite it")
    if force:
        for name in names:
            clean_sample_dir(paths.sample_dir(name))
        for path in paths.owned_files():
            remove_file(path)


def _copy_sample(source: Path, target: Path, files: dict[str, str]) -> list[Path]:
    """Each recorded file, checked against its sha256 while copied; .partial then renamed."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, digest in sorted(files.items()):
        final, partial = target / name, OutputPaths.partial(target / name)
        remove_file(partial)
        hasher = hashlib.sha256()
        try:
            with open(source / name, "rb") as src, open_exclusive(partial) as out:
                while chunk := src.read(_COPY_BYTES):
                    hasher.update(chunk)
                    out.write(chunk)
        except FileNotFoundError:
            raise MergeError(f"{source / name} is missing: rerun that shard") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        if hasher.hexdigest() != digest:
            partial.unlink(missing_ok=True)
            raise MergeError(f"{source / name} changed since its shard wrote it (sha256 differs); rerun that shard")
        os.replace(partial, final)
        written.append(final)
    return written
