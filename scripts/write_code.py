import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.gpus import claim_gpu  # noqa: E402

claim_gpu(snakemake.resources.gpu)  # the rule's GPUs (tensor parallel), before CUDA starts

from evovlm import mmzero  # noqa: E402
from evovlm.schema import PROGRAMS, PROPOSALS, write_parquet  # noqa: E402
from evovlm.stages import Shard, engine_from_config  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

p = snakemake.params
frame = mmzero.write_code(
    engine_from_config(p.policy, snakemake.config["engine"], p.dtype),
    read_or_exit(snakemake.input.proposals, PROPOSALS),
    round_=int(snakemake.wildcards.round),
    k=p.k,
    languages=p.languages,
    sampling=p.sampling,
    seed=p.seed,
    shard=Shard.parse(snakemake.wildcards.scatteritem),
)
write_parquet(frame, snakemake.output.programs, PROGRAMS)
print(f"{frame.height} programs", file=sys.stderr)
