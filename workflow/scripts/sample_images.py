import json
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.methods.evolmm.stages import sample_images  # noqa: E402
from evovlm.schema import IMAGES, write_parquet  # noqa: E402

frame, stats = sample_images(
    snakemake.input.folder,
    round_=int(snakemake.wildcards.round),
    count=snakemake.params.n_images,
    seed=snakemake.params.seed,
)
write_parquet(frame, snakemake.output.images, IMAGES)
Path(snakemake.output.stats).write_text(json.dumps(stats, indent=2) + "\n")
print(json.dumps(stats), file=sys.stderr)
