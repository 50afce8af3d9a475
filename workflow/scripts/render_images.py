import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: SIM115

from evovlm.render import RenderConfig, render_programs  # noqa: E402
from evovlm.schema import PROGRAMS, RENDERS, write_parquet  # noqa: E402
from evovlm.tables import read_or_exit  # noqa: E402

programs = read_or_exit(snakemake.input.programs, PROGRAMS)
renders = render_programs(
    programs.select("program_id", "language", "code"),
    RenderConfig.from_dict(snakemake.params.render),
    threads=snakemake.threads,
    progress=True,
)
write_parquet(renders, snakemake.output.renders, RENDERS, round_=int(snakemake.wildcards.round))
print(renders["status"].value_counts(), file=sys.stderr)
