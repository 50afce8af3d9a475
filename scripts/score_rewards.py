import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.rewards import MMZeroRewardConfig, score_mmzero  # noqa: E402
from evovlm.schema import (  # noqa: E402
    ANSWERS,
    PROGRAMS,
    PROPOSALS,
    RENDERS,
    REWARDS,
    read_parquet,
    write_parquet,
)

inp = snakemake.input
scored = score_mmzero(
    read_parquet(inp.proposals, PROPOSALS),
    read_parquet(inp.programs, PROGRAMS).drop("prompt_ids", "completion_ids", "logprobs"),
    read_parquet(inp.renders, RENDERS).drop("image"),
    read_parquet(inp.answers, ANSWERS).drop("prompt_ids", "completion_ids", "logprobs"),
    MMZeroRewardConfig.from_dict(snakemake.params.rewards),
)
for role, frame in scored.items():
    write_parquet(
        frame, getattr(snakemake.output, role), REWARDS, round_=int(snakemake.wildcards.round)
    )
    print(f"{role}: {frame.height} rows, mean reward {frame['reward'].mean()}", file=sys.stderr)
