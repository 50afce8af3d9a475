import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.synth import write_demo_images  # noqa: E402

n = write_demo_images(snakemake.output.folder, snakemake.params.n_images, snakemake.params.seed)
print(f"{n} images", file=sys.stderr)
