# evovlm: self-evolving vision-language models by self-play (MM-Zero, EvoLMM).
# Wiring only: the rules are in workflow/rules/, the code in src/evovlm/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/model.smk"


if config["method"] == "mmzero":

    include: "workflow/rules/mmzero.smk"
    include: "workflow/rules/render.smk"

else:

    include: "workflow/rules/evolmm.smk"


include: "workflow/rules/round.smk"
include: "workflow/rules/gather.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    default_target: True
    input:
        all_targets(),
