"""Old home of the atomic writers, kept only as a name: the code is in `virnucpro.fsutil.atomic`."""

from virnucpro.fsutil.atomic import fsync_directory, write_bytes_atomic, write_json_atomic

__all__ = ["fsync_directory", "write_bytes_atomic", "write_json_atomic"]
