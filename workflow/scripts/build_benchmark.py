import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.evaluate import EvalConfig, build_benchmark  # noqa: E402
from evovlm.render import RenderConfig  # noqa: E402
from evovlm.schema import BENCHMARK, write_parquet  # noqa: E402

frame = build_benchmark(
    EvalConfig.from_dict(snakemake.params.eval), RenderConfig.from_dict(snakemake.params.render)
)
write_parquet(frame, snakemake.output.benchmark, BENCHMARK)
print(frame["benchmark"].value_counts(sort=True), file=sys.stderr)
