import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.rewards import EvoLMMRewardConfig, score_evolmm  # noqa: E402
from evovlm.schema import EVOLMM_ANSWERS, QUESTIONS, REWARDS, read_parquet, write_parquet  # noqa: E402

drop = ("prompt_ids", "completion_ids", "logprobs")
scored = score_evolmm(
    read_parquet(snakemake.input.questions, QUESTIONS).drop(*drop),
    read_parquet(snakemake.input.answers, EVOLMM_ANSWERS).drop(*drop),
    EvoLMMRewardConfig.from_dict(snakemake.params.rewards),
)
for role, frame in scored.items():
    write_parquet(
        frame, getattr(snakemake.output, role), REWARDS, round_=int(snakemake.wildcards.round)
    )
    print(f"{role}: {frame.height} rows, mean reward {frame['reward'].mean()}", file=sys.stderr)
