"""Old home of the exclusive-file helpers, kept only as a name: the code is in `virnucpro.fsutil.safe_files`."""

from virnucpro.fsutil.safe_files import (
    NEW_FILE_MODE,
    OutputClobberError,
    create_exclusive,
    open_exclusive,
    refuse_link,
    remove_file,
    remove_tree,
)

__all__ = ["NEW_FILE_MODE", "OutputClobberError", "create_exclusive", "open_exclusive", "refuse_link",
           "remove_file", "remove_tree"]
