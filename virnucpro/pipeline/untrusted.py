"""Old home of the untrusted-JSON checks, kept only as a name: the code is in `virnucpro.fsutil.untrusted`."""

from virnucpro.fsutil.untrusted import (
    MAX_COUNT,
    MAX_FILE_BYTES,
    Invalid,
    count,
    digests,
    fields,
    load_json_object,
    of_type,
    sizes,
)

__all__ = ["MAX_COUNT", "MAX_FILE_BYTES", "Invalid", "count", "digests", "fields", "load_json_object", "of_type",
           "sizes"]
