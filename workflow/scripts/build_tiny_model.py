import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.tiny import TinySpec, build_tiny_model  # noqa: E402

build_tiny_model(snakemake.output.model, TinySpec.from_dict(snakemake.params.spec))
