"""File safety below every other layer: exclusive creation that never follows a link
(`safe_files`), atomic durable writes (`atomic`), file hashing (`hashing`) and bounded, typed
reading of JSON files a user could have edited (`untrusted`).

Models, outputs, the pipeline and the CLI all write and hash files through these, so there is
one implementation of each rule (mode from the umask, fsync before rename, no clobbering).
"""
