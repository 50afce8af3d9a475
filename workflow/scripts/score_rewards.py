"""score_rewards rule: the method plug-in scores the round's tables; one Parquet per role."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm import methods  # noqa: E402
from evovlm.schema import REWARDS, SPECS, write_parquet  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

method = methods.from_config(snakemake.config)
tables = {
    name: read_or_exit(snakemake.input[name], SPECS[spec]).drop(*method.scoring_drop.get(name, ()))
    for name, spec in method.tables.items()
}
scored = method.score(tables, snakemake.params.rewards)
for path in snakemake.output.rewards:
    role = Path(path).stem
    frame = scored[role]
    write_parquet(frame, path, REWARDS, round_=int(snakemake.wildcards.round))
    print(f"{role}: {frame.height} rows, mean reward {frame['reward'].mean()}", file=sys.stderr)
