"""The output a run owns: its lock, its journal, the fresh / resume / refuse decision, and what
`--force` removes.

A run promises that every file it leaves under one of virnucpro's names is its own: it holds the
directory's lock from before the first write to the end, refuses a name that is a link or a file it
did not create, never writes or removes a file that is one of its inputs, and with --force first
removes every file virnucpro writes there (OutputPaths' names only, links unlinked, never followed).
"""

from __future__ import annotations

import os
from pathlib import Path

from virnucpro.errors import FinishedRunError, ResumeError, VirnucproError
from virnucpro.fsutil.safe_files import OutputClobberError, refuse_link, remove_file, remove_tree
from virnucpro.outputs.paths import JOURNAL_FILE, PARTIAL_SUFFIX, OutputPaths
from virnucpro.outputs.rundir_lock import LOCK_NAME, RunDirLock
from virnucpro.pipeline.journal import Journal


class OutputState:
    """Where a run keeps its journal and lock, and which names in its output it owns."""

    def __init__(self, options) -> None:
        self.options = options
        output = Path(options.output)
        if options.embed_only:
            self.state_dir = OutputPaths.parts_dir(output)
            self.finished_marker = output
            self.owned_files = [output, OutputPaths.partial(output)]
            self.owned_dirs = [self.state_dir]
        else:
            paths = OutputPaths(output)
            self.state_dir = paths.state_dir
            self.finished_marker = paths.sequences
            self.owned_files = paths.owned_files()
            self.owned_dirs = paths.owned_dirs()
        self.journal_path = self.state_dir / JOURNAL_FILE
        self.lock = RunDirLock(output, "embed" if options.embed_only else "predict", state_dir=self.state_dir)

    def previous_journal(self) -> Journal | None:
        """The journal to resume from, or None for a fresh start; refuses to clobber silently.
        Call with the lock held."""
        opts = self.options
        self._refuse_input_collisions()
        if opts.force:
            self._clean()
            return None
        for path in [*self.owned_files, *self.owned_dirs, self.journal_path]:
            refuse_link(path)
        has_journal = self.journal_path.is_file()
        if has_journal and opts.resume:
            return Journal.load(self.journal_path)
        if has_journal:
            raise ResumeError(f"{opts.output} holds an unfinished run: add --resume to continue it"
                              " or --force to start over")
        if opts.resume and self.finished_marker.exists():
            raise FinishedRunError(f"{opts.output} holds a finished run; nothing to resume (use --force to redo it)")
        if self.finished_marker.exists():
            raise VirnucproError(f"{self.finished_marker} already exists: use --force to overwrite it")
        if self.lock.inherited:  # a run killed before its first checkpoint: its partial files are ours
            self.discard()
        self._refuse_foreign()
        return None

    def done(self) -> None:
        self.journal_path.unlink(missing_ok=True)
        if not self.options.embed_only:
            remove_tree(self.state_dir, keep=LOCK_NAME)

    def discard(self) -> None:
        """Remove the partial files and state of a run that checkpointed nothing (all this run's own:
        a fresh run refuses to start beside any of them)."""
        for path in self.owned_files:
            if path.name.endswith(PARTIAL_SUFFIX):
                remove_file(path)
        self._clear()

    def _clean(self) -> None:
        """--force: remove every file and directory virnucpro writes here, and nothing else."""
        for path in self.owned_files:
            remove_file(path)
        self._clear()

    def _clear(self) -> None:
        for directory in self.owned_dirs:
            remove_tree(directory, keep=LOCK_NAME if directory == self.state_dir else None)

    def _refuse_foreign(self) -> None:
        """A fresh run writes every owned name new: any that exists belongs to someone else."""
        for path in [*self.owned_files, *self.owned_dirs]:
            if path != self.state_dir and os.path.lexists(path):
                raise OutputClobberError(f"{path} already exists and is not from an unfinished run there:"
                                         " remove it or rerun with --force")

    def _refuse_input_collisions(self) -> None:
        """An input must never be one of the files this run writes or removes."""
        targets = [*self.owned_files, *self.owned_dirs]
        for name in self.options.inputs:
            if name == "-" or not os.path.exists(name):
                continue
            for target in targets:
                if _is_or_holds(target, Path(name)):
                    raise VirnucproError(f"input {name} is {target}, which this run would write or remove:"
                                         " move the input or choose another output directory")


def _is_or_holds(target: Path, path: Path) -> bool:
    """Whether `path` is the file `target` (same inode or same resolved path) or lies inside it."""
    real = path.resolve()
    resolved = target.resolve()
    if real == resolved or resolved in real.parents:
        return True
    try:
        named, data = os.stat(target, follow_symlinks=False), os.stat(path)
    except FileNotFoundError:
        return False
    return (named.st_dev, named.st_ino) == (data.st_dev, data.st_ino)
