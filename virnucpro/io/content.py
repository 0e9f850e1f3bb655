"""What an input holds: FASTA or FASTQ, something else (named from its magic bytes), or protein.

Checked on the decompressed stream before the parser sees it, so a user who gave the wrong file is
told what it is and what to do, instead of seeing a bytes repr or getting proteins "translated".
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from virnucpro.errors import InputFormatError

UTF8_BOM = b"\xef\xbb\xbf"
_SAM_HEADERS = (b"@HD\tVN:", b"@SQ\tSN:", b"@RG\tID:", b"@PG\tID:", b"@CO\t")  # "@" like FASTQ: a SAM header
_HEAD = 1 << 16

# magic bytes of the decompressed data -> what it is and what to do
_KNOWN_FILES = (
    (b"BAM\x01", "a BAM file: convert it with `samtools fasta` (or `samtools fastq`) first"),
    (b"CRAM", "a CRAM file: convert it with `samtools fasta` (or `samtools fastq`) first"),
    (b"PK\x03\x04", "a ZIP archive: unzip it first (virnucpro reads gzip, bzip2, xz and zstd directly)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive: extract it first"),
    (b"%PDF", "a PDF document"),
    (b"\x7fELF", "an executable program"),
    (b"\xff\xfe", "UTF-16 text: save it as ASCII or UTF-8"),
    (b"\xfe\xff", "UTF-16 text: save it as ASCII or UTF-8"),
)


def skip_bom(stream: BinaryIO) -> None:
    """Drop a UTF-8 byte-order mark (some Windows editors write one) so the parser sees '>' or '@'."""
    if stream.peek(len(UTF8_BOM)).startswith(UTF8_BOM):
        stream.read(len(UTF8_BOM))


def sniff_format(stream: BinaryIO, name: str, compression: str | None) -> str:
    """'fasta' or 'fastq' from the first non-blank byte; anything else is refused with a line
    that says what the data looks like."""
    head = stream.peek(_HEAD)
    first = head.lstrip()[:1]  # dnaio's FASTA parser skips leading blank lines
    if first in (b"", b">", b"#"):  # b"": only blank lines in the buffer; dnaio reads past them
        return "fasta"
    if first == b"@" and not head.startswith(_SAM_HEADERS):
        return "fastq"
    inside = f"{compression}-compressed, but " if compression else ""
    what = describe(head)
    if what is None:
        raise InputFormatError(f"{name}: {inside}not FASTA or FASTQ (starts with {first!r}, expected '>' or '@')")
    raise InputFormatError(f"{name}: {inside}not FASTA or FASTQ: this looks like {what}")


def describe(head: bytes) -> str | None:
    """What non-FASTA/FASTQ data looks like, from its first bytes; None for plain text."""
    if head.startswith(_SAM_HEADERS):
        return "a SAM file: convert it with `samtools fasta` (or `samtools fastq`) first"
    for magic, what in _KNOWN_FILES:
        if head.startswith(magic):
            return what
    if head[257:262] == b"ustar":
        return "a tar archive: extract the FASTA/FASTQ files from it first"
    start = head.lstrip()[:1024].lower()
    if start.startswith((b"<!doctype html", b"<html")) or b"<html" in start:
        return "an HTML page (a failed download?)"
    if start.startswith(b"<?xml") or start.startswith(b"<"):
        return "an XML or HTML document"
    if b"\x00" in head[:1024] or _not_utf8(head[:1024]):
        return "binary data"
    return None


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError as error:
        return error.start < len(data) - 3  # a character cut at the end of the sample is fine
    return False


# Letters of the amino-acid alphabet that no nucleotide alphabet uses (not even as IUPAC codes).
# In proteins they are about a third of the residues (UniProt: L 9.9%, E 6.7%, I 5.9%, P 4.7%,
# F 3.9%, Q 3.9%); in DNA/RNA, IUPAC codes and N/X masks included, they never occur.
_PROTEIN_ONLY = np.zeros(256, dtype=bool)
_PROTEIN_ONLY[list(b"EFIJLOPQZefijlopqz")] = True
PROTEIN_SAMPLE = 10_000
PROTEIN_FRACTION = 0.1


def refuse_protein(name: str, sequences: list[str]) -> None:
    """Refuse an input whose first PROTEIN_SAMPLE letters (first records of the input) are more than
    PROTEIN_FRACTION protein-only letters (E F I J L O P Q Z): protein sequences would otherwise be
    "translated" and classified silently. One in ten keeps a wide margin both ways: proteins have
    about one in three, nucleotides none, so short reads with IUPAC codes or typos still pass."""
    sample, size = [], 0
    for sequence in sequences:
        sample.append(sequence[: PROTEIN_SAMPLE - size])
        size += len(sample[-1])
        if size >= PROTEIN_SAMPLE:
            break
    if not size:
        return
    codes = np.frombuffer("".join(sample).encode("ascii", "replace"), dtype=np.uint8)
    protein_only = int(_PROTEIN_ONLY[codes].sum())
    if protein_only > PROTEIN_FRACTION * size:
        raise InputFormatError(
            f"{name}: looks like protein, not DNA/RNA ({protein_only / size:.0%} of the first {size:,} letters"
            " are E, F, I, L, P, Q or other amino-acid codes that no nucleotide alphabet uses);"
            " virnucpro needs nucleotide sequences"
        )
