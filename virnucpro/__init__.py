"""virnucpro: find viral sequences in reads and contigs (a fast, exact VirNucPro)."""

__version__ = "0.1.0"
