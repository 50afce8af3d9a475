import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.gpus import claim_gpu  # noqa: E402

claim_gpu(snakemake.resources.gpu)  # the rule's GPUs (tensor parallel), before CUDA starts

from evovlm import mmzero  # noqa: E402
from evovlm.schema import PROPOSALS, write_parquet  # noqa: E402
from evovlm.stages import Shard, engine_from_config  # noqa: E402

p = snakemake.params
frame = mmzero.propose(
    engine_from_config(p.policy, snakemake.config["engine"], p.dtype),
    round_=int(snakemake.wildcards.round),
    topics=mmzero.seed_topics(p.topics),
    prompts_per_topic=p.prompts_per_topic,
    sampling=p.sampling,
    seed=p.seed,
    shard=Shard.parse(snakemake.wildcards.scatteritem),
)
write_parquet(frame, snakemake.output.proposals, PROPOSALS)
print(f"{frame.height} proposals, {frame['parse_ok'].sum()} parsed", file=sys.stderr)
