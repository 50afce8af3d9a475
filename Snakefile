# evovlm: self-evolving vision-language models by self-play (MM-Zero, EvoLMM).
# Wiring only: the rules are in workflow/rules/, the code in src/evovlm/.
import os

import yaml
from snakemake.utils import min_version, update_config

min_version("9.0")


# This folder's config/config.yaml, else the workflow's own: a second experiment runs in its
# own folder (snakemake --directory DIR) with this Snakefile. The same for config/embedded.yaml.
CONFIGFILE, EMBEDDED = "config/config.yaml", "config/embedded.yaml"
if not os.path.exists(CONFIGFILE):
    CONFIGFILE = os.path.join(workflow.basedir, CONFIGFILE)
if not os.path.exists(EMBEDDED):
    EMBEDDED = os.path.join(workflow.basedir, EMBEDDED)


configfile: CONFIGFILE


# The tiny demo model's values (lr 3e-4, 12 steps, short token limits, 224 px) are layered in
# for model.base "embedded" only: a real model (a preset from config/presets/, or the schema's
# defaults) never runs with them. They go UNDER the experiment's config: its config file,
# --configfile and --config (all in `config` by now, which also decide model.base) win over them.
_model = config.get("model")
if not isinstance(_model, dict) or _model.get("base", "embedded") == "embedded":
    with open(EMBEDDED) as _demo_file:
        _demo = yaml.safe_load(_demo_file) or {}
    update_config(_demo, config)
    config.clear()
    config.update(_demo)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/model.smk"
# Every rule file is included (so `snakemake --lint` sees the whole workflow); the method's
# plug-in and all_targets() decide which rules a run needs.
include: "workflow/rules/mmzero.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/evolmm.smk"


# A plug-in method (config plugins) brings its own generation rules.
if METHOD_PLUGIN.rules:

    include: METHOD_PLUGIN.rules


include: "workflow/rules/round.smk"
include: "workflow/rules/gather.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


# The first run writes its resolved config beside the results (results/config.yaml); later
# commands in this folder start from it (workflow/rules/common.smk).
onstart:
    check_results_record()
    write_config_record()


rule all:
    default_target: True
    input:
        all_targets(),
        report_targets(),
