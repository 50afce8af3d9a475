"""build_gallery rule: an HTML page of sampled images of the round with their text and rewards
(the method plug-in's gallery over its round tables)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm import methods  # noqa: E402
from evovlm.schema import SPECS  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

inp = snakemake.input
method = methods.from_config(snakemake.config)
tables = {name: read_or_exit(inp[name], SPECS[spec]) for name, spec in method.tables.items()}
rewards = {Path(p).stem: read_or_exit(p, SPECS["rewards"]) for p in inp.rewards}
page = method.gallery(
    int(snakemake.wildcards.round),
    tables,
    rewards,
    k=snakemake.params.images,
    seed=snakemake.params.seed,
)
Path(snakemake.output.gallery).write_text(page, encoding="utf-8")
