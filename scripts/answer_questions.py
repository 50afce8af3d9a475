import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.gpus import claim_gpu  # noqa: E402

claim_gpu(snakemake.resources.gpu)  # the rule's GPUs (tensor parallel), before CUDA starts

from evovlm import evolmm  # noqa: E402
from evovlm.schema import EVOLMM_ANSWERS, IMAGES, QUESTIONS, write_parquet  # noqa: E402
from evovlm.stages import Shard, engine_from_config  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

p = snakemake.params
frame = evolmm.answer_questions(
    engine_from_config(p.policy, snakemake.config["engine"], p.dtype),
    read_or_exit(snakemake.input.images, IMAGES),
    read_or_exit(snakemake.input.questions, QUESTIONS),
    round_=int(snakemake.wildcards.round),
    sampling=p.sampling,
    seed=p.seed,
    shard=Shard.parse(snakemake.wildcards.scatteritem),
)
write_parquet(frame, snakemake.output.answers, EVOLMM_ANSWERS)
print(f"{frame.height} answers", file=sys.stderr)
