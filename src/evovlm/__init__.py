"""evovlm: self-evolving vision-language models by self-play, as a Snakemake workflow."""

__version__ = "0.1.0"
