import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115, F821

from evovlm import methods, prompts  # noqa: E402
from evovlm.engines import Request  # noqa: E402
from evovlm.schema import SPECS, frame_from_rows, write_parquet  # noqa: E402
from evovlm.stages import (  # noqa: E402
    Shard,
    completion_columns,
    engine_from_config,
    request_seed,
    sampling_params,
)

s = snakemake  # noqa: F821
methods.from_config(s.config)
p = s.params
round_ = int(s.wildcards.round)
topics = Shard.parse(s.wildcards.scatteritem).take([f"topic {i}" for i in range(p.prompts)])
requests = [
    Request(
        messages=prompts.render_messages("toy_speaker", topic=topic),
        sampling=sampling_params(p.sampling, int(p.sampling["n"])),
        seed=request_seed(p.seed, round_, "toy", topic),
    )
    for topic in topics
]
engine = engine_from_config(p.policy, s.config["engine"], p.dtype)
rows = []
for topic, request, output in zip(topics, requests, engine.generate(requests), strict=True):
    for j in range(len(output.samples)):
        rows.append(
            {
                "round": round_,
                "reply_id": f"{topic}-{j}",
                "group_id": topic,
                "sample_index": j,
                "seed": request.seed,
                **completion_columns(request, output, j),
            }
        )
spec = SPECS["toy_replies"]
write_parquet(frame_from_rows(rows, spec), s.output.replies, spec)
print(f"{len(rows)} replies", file=sys.stderr)
