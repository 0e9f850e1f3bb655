"""`virnucpro merge`: join the shard directories of a `--shard K/N` job array into one result."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("merge")
@click.argument("shard_dirs", nargs=-1, required=True, metavar="SHARD_DIR...",
                type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the merged result files.")
@click.option("--force", is_flag=True, help="Overwrite result files already in OUTDIR.")
def merge(shard_dirs: tuple[Path, ...], outdir: Path, force: bool) -> None:
    """Merge SHARD_DIR... (all N shards of one run, or of one `predict --samples` study) into files
    identical to a single run (an unsharded study)."""
    from virnucpro.outputs.rundir_lock import RunDirLock
    from virnucpro.pipeline.shards import merge_shards
    from virnucpro.pipeline.study_merge import is_study_shard, merge_study_shards

    with RunDirLock(outdir, "merge"):
        if is_study_shard(shard_dirs[0]):
            files = merge_study_shards(list(shard_dirs), outdir, force)
        else:
            files = merge_shards(list(shard_dirs), outdir, force)
    click.echo(f"merged {len(shard_dirs)} shards into {len(files)} files in {outdir}", err=True)
