import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.gpus import claim_gpu  # noqa: E402

claim_gpu(snakemake.resources.gpu)  # the rule's GPUs (tensor parallel), before CUDA starts

from evovlm.evaluate import EvalConfig, evaluate  # noqa: E402
from evovlm.schema import BENCHMARK, EVAL, write_parquet  # noqa: E402
from evovlm.stages import engine_from_config  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

p = snakemake.params
frame = evaluate(
    engine_from_config(p.policy, snakemake.config["engine"], p.dtype),
    read_or_exit(snakemake.input.benchmark, BENCHMARK),
    snakemake.wildcards.policy,
    EvalConfig.from_dict(p.eval),
    seed=p.seed,
    method=snakemake.config["method"],
)
write_parquet(frame, snakemake.output.results, EVAL)
print(f"{frame['correct'].sum()}/{frame.height} correct", file=sys.stderr)
