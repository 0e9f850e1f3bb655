"""User-facing errors: anything raised as VirnucproError is printed as one line, no traceback."""


class VirnucproError(Exception):
    """An error the user can fix (bad input, missing model, unwritable output)."""

    exit_code = 1


class InputFormatError(VirnucproError):
    """Malformed FASTA/FASTQ input; the message names the file and the record or line."""


class ModelLoadError(VirnucproError):
    """A checkpoint is missing, malformed or refused (e.g. unsafe pickle content)."""


class ResumeError(VirnucproError):
    """A resume was refused (inputs or parameters changed) or the journal is unusable."""


class FinishedRunError(ResumeError):
    """--resume of an output that holds a finished run (or study): nothing is left to run. predict
    checks the finished output and exits 0 (pipeline/finished_run.py); anything else refuses."""
