"""Six-frame translation and frame selection against hand-worked examples and a slow reference."""

from itertools import product

from hypothesis import given, settings
from hypothesis import strategies as st

from virnucpro.frames import chunk_bounds, chunk_record, chunk_records
from virnucpro.io import Record

# NCBI table 1 in TCAG order; the slow reference below uses it through a plain dict.
CODON_TABLE = dict(
    zip(("".join(c) for c in product("TCAG", repeat=3)), "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG")
)


def reference_translate(sequence):
    """Codons at 0, 3, ... while i < len - 2; a codon with any non-ACGT letter is dropped."""
    return "".join(CODON_TABLE.get(sequence[i : i + 3], "") for i in range(0, len(sequence) - 2, 3))


def reference_reverse_complement(sequence):
    pairs = {"A": "T", "T": "A", "C": "G", "G": "C", "a": "t", "t": "a", "c": "g", "g": "c"}
    return "".join(pairs.get(base, base) for base in reversed(sequence))


def reference_frames(chunk_id, chunk_sequence):
    """(frame ID, nucleotide, protein) of the kept frames, per reference section 2 (U read as T)."""
    forward = chunk_sequence.upper().replace("U", "T")
    kept = []
    for strand, text in (("F", forward), ("R", reference_reverse_complement(forward))):
        for k in (1, 2, 3):
            protein = reference_translate(text[k - 1 :])
            if protein and "*" not in protein:
                kept.append((f"{chunk_id}{strand}{k}", text[k - 1 : k + 3 * len(protein)], protein))
    return kept


def reference_chunks(record, size, mode):
    return [
        (f"{record.id}_chunk_{i}", start, end, record.sequence[start:end],
         reference_frames(f"{record.id}_chunk_{i}", record.sequence[start:end]))
        for i, (start, end) in enumerate(chunk_bounds(len(record.sequence), size, mode), 1)
    ]


def as_tuples(chunks):
    return [
        (c.chunk_id, c.start, c.end, c.sequence, [(f.frame_id, f.nucleotide, f.protein) for f in c.frames])
        for c in chunks
    ]


def kept(sequence, record_id="s"):
    (chunk,) = chunk_record(Record(record_id, sequence, "test", 0), 300)
    return [(f.strand_frame, f.nucleotide, f.protein) for f in chunk.frames]


def test_hand_worked_example():
    # ATGGCCTAA, reverse complement TTAGGCCAT.
    # F1 ATG GCC TAA = MA* (stop); F2 TGG CCT = WP; F3 GGC CTA = GL;
    # R1 TTA GGC CAT = LGH; R2 TAG GCC = *A (stop); R3 AGG CCA = RP.
    assert kept("ATGGCCTAA") == [
        ("F2", "TGGCCTA", "WP"),  # 3p+1 = 7 bases: one more than the two codons
        ("F3", "GGCCTAA", "GL"),
        ("R1", "TTAGGCCAT", "LGH"),  # 3p+1 = 10 is clamped at the chunk end
        ("R3", "AGGCCAT", "RP"),
    ]


def test_frame_ids_and_chunk_fields():
    (chunk,) = chunk_record(Record("read7", "atggcctaa", "test", 0), 300)
    assert (chunk.chunk_id, chunk.record_id, chunk.start, chunk.end) == ("read7_chunk_1", "read7", 0, 9)
    assert chunk.sequence == "atggcctaa"  # chunks keep the input's case
    assert [f.frame_id for f in chunk.frames] == ["read7_chunk_1F2", "read7_chunk_1F3", "read7_chunk_1R1", "read7_chunk_1R3"]
    assert all(f.chunk_id == "read7_chunk_1" for f in chunk.frames)


def test_lower_case_is_upper_cased_first():
    assert kept("atggcctaa") == kept("ATGGCCTAA")


def test_codons_with_n_are_dropped_and_shorten_the_protein():
    # F1 ATG NNN AAA = M (dropped) K -> "MK": the nucleotide is still the 3p+1 = 7 bases from 0.
    # R1 (TTTNNNCAT): TTT NNN CAT = F (dropped) H. Every other frame has only dropped codons.
    assert kept("ATGNNNAAA") == [("F1", "ATGNNNA", "MK"), ("R1", "TTTNNNC", "FH")]


def test_reverse_complement_keeps_iupac_letters():
    # ATGRAAA -> reverse complement TTTRCAT: R stays R (it is not turned into Y).
    frames = {sf: (nuc, prot) for sf, nuc, prot in kept("ATGRAAA")}
    assert frames["F1"] == ("ATGR", "M")
    assert frames["R1"] == ("TTTR", "F")


def test_u_is_read_as_t():
    # Documented deviation: the original would drop AUG and give "A".
    assert kept("AUGGCC")[0] == ("F1", "ATGGCC", "MA")
    assert kept("auggcc") == kept("ATGGCC")


def test_short_chunks_have_no_frames():
    assert kept("AT") == []
    assert chunk_records([Record("e", "", "test", 0)], 300) == [[]]


def test_long_record_is_chunked_and_every_chunk_translated():
    sequence = "ATGAAACCCGGGTTT" * 50  # 750 bases
    chunks = chunk_record(Record("c", sequence, "test", 0), 300, "legacy")
    # legacy: R = 150 is divided by n = 3, so the shifts are 51, 51 and the last chunk is 252 bp
    assert [(c.start, c.end) for c in chunks] == [(0, 300), (249, 549), (498, 750)]
    assert as_tuples(chunks) == reference_chunks(Record("c", sequence, "test", 0), 300, "legacy")


bases = st.sampled_from("ACGTACGTACGTACGTacgtNRYKMU-*")
sequences = st.text(bases, min_size=0, max_size=700)


@settings(max_examples=60, deadline=None)
@given(st.lists(sequences, min_size=1, max_size=12), st.integers(3, 320), st.sampled_from(["even", "legacy"]))
def test_batch_matches_the_slow_reference(batch, size, mode):
    records = [Record(f"r{i}", sequence, "test", i) for i, sequence in enumerate(batch)]
    result = chunk_records(records, size, mode)
    assert [as_tuples(chunks) for chunks in result] == [reference_chunks(r, size, mode) for r in records]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(st.sampled_from("ACGT"), min_size=140, max_size=160), min_size=1, max_size=40))
def test_reads_batch_matches_per_record(batch):
    records = [Record(f"r{i}", sequence, "test", i) for i, sequence in enumerate(batch)]
    assert [as_tuples(c) for c in chunk_records(records, 300)] == [as_tuples(chunk_record(r, 300)) for r in records]
