"""build_gallery rule: an HTML page of sampled images of the round with their text and rewards."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm import report  # noqa: E402
from evovlm.schema import SPECS  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

inp = snakemake.input
round_ = int(snakemake.wildcards.round)
rewards = {Path(p).stem: read_or_exit(p, SPECS["rewards"]) for p in inp.rewards}
k = snakemake.params.images
if snakemake.config["method"] == "mmzero":
    page = report.mmzero_gallery(
        round_,
        read_or_exit(inp.proposals, SPECS["proposals"]),
        read_or_exit(inp.programs, SPECS["programs"]),
        read_or_exit(inp.renders, SPECS["renders"]),
        read_or_exit(inp.answers, SPECS["answers"]),
        rewards,
        k=k,
        seed=snakemake.params.seed,
    )
else:
    page = report.evolmm_gallery(
        round_,
        read_or_exit(inp.images, SPECS["images"]),
        read_or_exit(inp.questions, SPECS["questions"]),
        read_or_exit(inp.answers, SPECS["evolmm_answers"]),
        rewards,
        k=k,
        seed=snakemake.params.seed,
    )
Path(snakemake.output.gallery).write_text(page, encoding="utf-8")
