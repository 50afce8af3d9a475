import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.rewards import MMZeroRewardConfig, score_mmzero  # noqa: E402
from evovlm.schema import (  # noqa: E402
    ANSWERS,
    PROGRAMS,
    PROPOSALS,
    RENDERS,
    REWARDS,
    write_parquet,
)
from evovlm.tables import read_or_exit  # noqa: E402

inp = snakemake.input
scored = score_mmzero(
    read_or_exit(inp.proposals, PROPOSALS),
    read_or_exit(inp.programs, PROGRAMS).drop("prompt_ids", "completion_ids", "logprobs"),
    read_or_exit(inp.renders, RENDERS).drop("image"),
    read_or_exit(inp.answers, ANSWERS).drop("prompt_ids", "completion_ids", "logprobs"),
    MMZeroRewardConfig.from_dict(snakemake.params.rewards),
)
for role, frame in scored.items():
    write_parquet(frame, getattr(snakemake.output, role), REWARDS)
    print(f"{role}: {frame.height} rows, mean reward {frame['reward'].mean()}", file=sys.stderr)
