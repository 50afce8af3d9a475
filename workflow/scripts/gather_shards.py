import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm import methods  # noqa: E402
from evovlm.schema import SPECS, gather  # noqa: E402

methods.from_config(snakemake.config)  # a plug-in method registers its table specs

spec = SPECS[snakemake.params.table]
frame = gather(list(snakemake.input.shards), spec, snakemake.output.table)
print(f"gathered {len(snakemake.input.shards)} shard(s), {frame.height} rows", file=sys.stderr)
