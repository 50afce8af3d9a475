"""Profiles and GPU placement: the default profile loads, GPU jobs are limited to the GPUs present
and get distinct devices, the SLURM profile routes every GPU rule to the GPU partition, and a
base model that cannot be used stops the workflow before any job with one line."""

import os
import re
import subprocess
import sys
import textwrap

import pytest
import yaml

from evovlm.config import ConfigError, check_hub_model
from evovlm.experiment import validate_config
from tests.conftest import REPO, snakemake

RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def rule_blocks() -> dict[str, str]:
    """Every rule of every rule file (both methods), name -> its text."""
    blocks = {}
    for path in RULE_FILES:
        text = path.read_text()
        for m in re.finditer(r"(?ms)^rule (\w+):\n(.*?)(?=^\S|\Z)", text):
            blocks[m.group(1)] = m.group(2)
    return blocks


def gpu_rules() -> set[str]:
    return {name for name, body in rule_blocks().items() if re.search(r"^\s+gpu=", body, re.M)}


def test_plain_dry_run_uses_the_default_profile_and_prints_the_gpu_limit():
    env = {"CUDA_VISIBLE_DEVICES": ""}  # no GPU: the GPU rules run on the CPU, one at a time
    proc = snakemake("-n", "-q", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Using workflow specific profile profiles/default" in proc.stderr
    assert "evovlm: at most 1 GPU job(s) at once (GPUs visible: 0 GPU(s)" in proc.stderr


def test_gpu_limit_follows_the_visible_gpus_and_the_command_line_wins():
    proc = snakemake("-n", "-q", env={"CUDA_VISIBLE_DEVICES": "0,1,2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "evovlm: at most 3 GPU job(s) at once (GPUs visible: 3 GPU(s) 0,1,2)" in proc.stderr
    proc = snakemake("-n", "-q", "--resources", "gpu=2", env={"CUDA_VISIBLE_DEVICES": "0,1,2"})
    assert "evovlm: at most 2 GPU job(s) at once (--resources gpu: 3 GPU(s) 0,1,2)" in proc.stderr


def test_default_profile_gives_cores_so_summary_needs_no_flag():
    proc = snakemake("--summary")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "build_tiny_model" in proc.stdout


def test_slurm_profile_sends_every_gpu_rule_to_the_gpu_partition():
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    on_gpu = {
        rule
        for rule, res in profile["set-resources"].items()
        if res.get("slurm_partition") == "gpu"
    }
    needed = gpu_rules()
    assert {"propose_concepts", "ask_questions", "train_policy", "evaluate_policy"} <= needed
    assert needed == on_gpu, f"missing: {needed - on_gpu}, extra: {on_gpu - needed}"
    assert set(profile["set-resources"]) <= set(rule_blocks()), "a set-resources rule is unknown"


def test_slurm_profile_asks_for_the_gpus_once_and_leaves_the_count_to_the_rule():
    # The slurm plugin turns a job's `gpu` resource into --gpus=N and refuses `gpu` together
    # with a GPU `gres`; a `gpu:` in set-resources would also override the rule's count
    # (engine.tensor_parallel_size). So the profile names neither.
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    sections = [profile.get("default-resources") or {}, *profile["set-resources"].values()]
    for resources in sections:
        assert not {"gpu", "gpus", "gres"} & set(resources), resources
    for name in gpu_rules():
        assert re.search(r"^\s+gpu=(generation_gpus|train_gpus)\(\),$", rule_blocks()[name], re.M)


class _Job:
    """What the slurm plugin reads of a job: its resources (the rule's and the profile's)."""

    def __init__(self, resources: dict):
        from snakemake.iocontainers import ResourceList

        self.resources = ResourceList(fromdict=resources)


def test_slurm_plugin_submits_the_rules_gpu_count():
    pytest.importorskip("snakemake_executor_plugin_slurm")
    from snakemake_executor_plugin_slurm.partitions import parse_gpu_requirements
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    for rule, extra in profile["set-resources"].items():
        job = _Job(
            {"gpu": 2, **extra}
        )  # the rule's gpu= (tensor_parallel_size 2), then the profile
        assert parse_gpu_requirements(job) == (2, None), rule
        assert set_gres_string(job) == " --gpus=2", rule


def slurm_dry_run(*config: str) -> subprocess.CompletedProcess:
    # conda cannot be installed on a machine without conda-forge, and a dry run with
    # software-deployment-method conda asks `conda info`; environment modules need nothing.
    args = ["-n", "-p", "--profile", "profiles/slurm", "--sdm", "env-modules", "--config", *config]
    return snakemake(*args, env={"CUDA_VISIBLE_DEVICES": ""})


def test_slurm_dry_run_plans_every_gpu_job_with_the_tensor_parallel_gpus():
    pytest.importorskip("snakemake_executor_plugin_slurm")
    proc = slurm_dry_run("engine={tensor_parallel_size: 2}", "train={num_processes: 3}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "evovlm: at most" not in out  # no local GPU limit on a cluster (the submit host's)
    jobs = re.findall(r"rule (\w+):\n(?:.*\n)*?\s+resources: (.*)", out)
    gpu_jobs = {rule: res for rule, res in jobs if rule in gpu_rules()}
    assert {"propose_concepts", "write_code", "sample_answers", "train_policy"} <= set(gpu_jobs)
    for rule, res in jobs:
        fields = dict(f.split("=", 1) for f in res.split(", "))
        if rule in gpu_rules():
            assert fields["slurm_partition"] == "gpu", rule
            assert fields["gpu"] == ("3" if rule == "train_policy" else "2"), (rule, res)
            assert "gres" not in fields, (rule, res)
        else:
            assert "gpu" not in fields and fields["slurm_partition"] == "cpu", (rule, res)


def test_local_rules_are_real_small_cpu_rules():
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    blocks = re.findall(r"(?ms)^\s*localrules:\n(.*?)\n\n", common)
    local = {name.strip(" ,") for block in blocks for name in block.split() if name.strip(" ,")}
    assert {"gather_shards", "summarize_round", "summarize_eval", "fetch_base_model"} <= local
    assert "sample_images" in local  # EvoLMM's, declared only when that method is on
    assert local <= set(rule_blocks()), f"unknown rules: {local - set(rule_blocks())}"
    assert not local & gpu_rules()


def test_gpu_rules_name_the_gpu_conda_env():
    for name in gpu_rules():
        assert "envs/evovlm-gpu.yaml" in rule_blocks()[name], name


def requirement_lines(path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


@pytest.mark.parametrize(
    ("env", "pins"), [("evovlm.yaml", "cpu.txt"), ("evovlm-gpu.yaml", "gpu.txt")]
)
def test_conda_envs_name_no_file_and_hold_the_pins(tmp_path, env, pins):
    # Snakemake copies an env file to .snakemake/conda/<hash>.yaml and runs
    # `conda env create --file` on the copy: a path in its pip list (-r, -e, ./x) would be read
    # from there. Checked where Snakemake puts it; the pins are the .txt file's, line for line.
    copy = tmp_path / ".snakemake" / "conda" / "0123abcd.yaml"
    copy.parent.mkdir(parents=True)
    copy.write_text((REPO / "envs" / env).read_text())
    spec = yaml.safe_load(copy.read_text())
    (pip,) = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict)]
    for entry in pip:
        words = entry.split()
        if words[0] in ("-r", "--requirement", "-c", "--constraint", "-e", "--editable"):
            target = copy.parent / words[-1]
            assert target.exists(), f"{env}: {entry!r} points at {target}, missing"
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+(==[\w.+]+)?", entry), f"{env}: {entry!r}"
    assert pip == requirement_lines(REPO / "envs" / pins)
    # The package itself is not installed in the env (jobs import it from src/), so every one of
    # its requirements must be among the pins.
    project = __import__("tomllib").loads((REPO / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~ ]", req)[0].lower().replace("_", "-") for req in pip}
    for req in project["dependencies"]:
        assert re.split(r"[<>=!~ ]", req)[0].lower().replace("_", "-") in names, (env, req)


CLAIM = textwrap.dedent(
    """
    import sys, time
    from evovlm.gpus import claim_gpu
    print(claim_gpu(int(sys.argv[1]), wait_s=float(sys.argv[2]), poll_s=0.05), flush=True)
    time.sleep(float(sys.argv[3]))
    """
)


def _claim(tmp_path, n=1, wait_s=30.0, hold_s=0.0, devices="0,1,2"):
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": devices,
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": str(REPO / "src"),
    }
    return subprocess.Popen(
        [sys.executable, "-c", CLAIM, str(n), str(wait_s), str(hold_s)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_gpu_jobs_get_distinct_devices(tmp_path):
    holders = [_claim(tmp_path, hold_s=5.0) for _ in range(3)]
    got = [p.stdout.readline().strip() for p in holders]
    assert sorted(got) == ["0", "1", "2"]
    late = _claim(tmp_path, wait_s=0.3)  # all three busy: it waits, then says so
    _, err = late.communicate(timeout=60)
    assert late.returncode != 0 and "no 1 free GPU(s) among ['0', '1', '2']" in err
    for p in holders:
        p.kill()
        p.wait()
    again = _claim(tmp_path, n=2)  # the locks die with their processes
    out, _ = again.communicate(timeout=60)
    assert out.strip() in ("0,1", "0,2", "1,2")


def test_one_visible_gpu_is_left_as_it_is(tmp_path):
    out, _ = _claim(tmp_path, devices="3").communicate(timeout=60)
    assert out.strip() == "3"


# --- the base model ---


def _base_error(base: str) -> str:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["model"]["base"] = base
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return str(info.value)


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    message = _base_error(str(tmp_path))
    assert message.startswith("config key 'model.base': folder")
    assert "not a model (no config, tokenizer, processor file)" in message
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "tokenizer.json").write_text("{}")
    assert "(no processor file)" in _base_error(str(tmp_path))


def test_the_tiny_model_folder_passes_the_model_check(tiny_model_dir):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["model"]["base"] = str(tiny_model_dir)
    validate_config(config)


def test_offline_hub_id_that_is_not_cached_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        check_hub_model("acme/no-such-model")
    assert str(info.value) == (
        "config key 'model.base': hub id 'acme/no-such-model' is not in the local Hugging Face "
        "cache and HF_HUB_OFFLINE is set; fix: point model.base at a local model folder, or "
        "fetch it once where the hub is reachable"
    )


@pytest.mark.parametrize("base", ["acme/no-such-model", "models/x"])
def test_workflow_stops_on_an_unusable_hub_id_before_any_job(tmp_path, base):
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = snakemake("-n", "--config", f"model={{base: {base}}}", env=env)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"config error: config key 'model.base': hub id '{base}' is not in the local Hugging "
        "Face cache and HF_HUB_OFFLINE is set; fix: point model.base at a local model folder, "
        "or fetch it once where the hub is reachable"
    ]


def test_a_hub_id_is_fetched_once_by_a_rule_and_read_locally(tmp_path):
    # A cached hub model passes the check; round 1 and the base evaluation read the folder
    # fetch_base_model writes, so the download happens once.
    hub = tmp_path / "hub"
    snap = hub / "models--acme--vl" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (hub / "models--acme--vl" / "refs").mkdir()
    (hub / "models--acme--vl" / "refs" / "main").write_text("abc123")
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub)}
    proc = snakemake("-n", "-F", "--config", "model={base: acme/vl}", "rounds=1", "-p", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert len(re.findall(r"rule fetch_base_model:", out)) == 1
    assert "output: resources/hub/acme--vl" in out
    assert "build_tiny_model" not in out


# --- built resources shared between experiments ---


def _experiment(path, shared, extra=""):
    (path / "config").mkdir(parents=True)
    text = (REPO / "config" / "config.yaml").read_text()
    (path / "config" / "config.yaml").write_text(text + f"\nresources_dir: {shared}\n{extra}")
    return path


def _planned(workdir) -> dict[str, list[str]]:
    proc = snakemake("-n", "-p", "-s", str(REPO / "Snakefile"), "-d", str(workdir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs: dict[str, list[str]] = {}
    for m in re.finditer(r"rule (\w+):\n(?:.*\n)*?\s+output: (\S+)", proc.stdout):
        jobs.setdefault(m.group(1), []).append(m.group(2))
    return jobs


def test_experiments_share_built_resources_keyed_by_recipe(tmp_path):
    shared = tmp_path / "cache"
    first = _planned(_experiment(tmp_path / "exp1", shared))
    (base,) = first["build_tiny_model"]
    (warm,) = first["warmup_tiny_model"]
    assert re.fullmatch(re.escape(str(shared)) + r"/tiny-base-[0-9a-f]{12}", base)
    assert re.fullmatch(re.escape(str(shared)) + r"/tiny-warm-[0-9a-f]{12}", warm)
    for folder in (base, warm):  # as if the first experiment had built them
        (tmp_path / folder).mkdir(parents=True)
    second = _planned(_experiment(tmp_path / "exp2", shared))
    assert "build_tiny_model" not in second and "warmup_tiny_model" not in second
    assert "propose_concepts" in second
    # Another recipe (a bigger tiny model) is another build, never the shared one.
    other = _planned(_experiment(tmp_path / "exp3", shared, "tiny: {hidden_size: 256}\n"))
    assert other["build_tiny_model"] != [base] and other["warmup_tiny_model"] != [warm]


def test_fetch_base_model_runs_once_then_jobs_read_the_local_folder(tmp_path, tiny_model_dir):
    # A "hub" model that is in the local Hugging Face cache (the tiny model), offline: the rule
    # puts it into resources/hub/ and round 1's Proposer job samples from that folder.
    hub = tmp_path / "hf-cache"
    repo = hub / "models--acme--vl"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    for f in tiny_model_dir.iterdir():
        (repo / "snapshots" / "abc123" / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    exp = _experiment(tmp_path / "exp", "resources")
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(hub)}
    target = "results/round_1/shards/mmzero/proposals/1-of-1.parquet"
    args = ["-s", str(REPO / "Snakefile"), "-d", str(exp), "--cores", "2", "--config"]
    args += ["model={base: acme/vl}", "mmzero={proposer: {n: 2, max_tokens: 8}}"]
    proc = snakemake(target, *args, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = exp / "resources" / "hub" / "acme--vl"
    assert (folder / "model.safetensors").exists()
    assert '"commit": "abc123"' in (folder / "evovlm-source.json").read_text()
    log = (exp / "logs" / "propose_concepts" / "round_1.1-of-1.log").read_text()
    assert "policy: resources/hub/acme--vl (engine: hf" in log
    assert (exp / target).exists()
    again = snakemake(target, "-n", *args, env=env)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def _job_events(stderr: str, rule: str) -> list[str]:
    """The scheduler's order of starts and ends of ``rule``'s jobs, from Snakemake's log."""
    events = []
    for line in stderr.splitlines():
        if line.strip() in (f"rule {rule}:", f"localrule {rule}:"):
            events.append("start")
        elif "Finished jobid" in line and f"(Rule: {rule})" in line:
            events.append("end")
    return events


@pytest.mark.parametrize(("gpu_limit", "expected"), [(None, "one after the other"), (2, "overlap")])
def test_gpu_jobs_do_not_overlap_beyond_the_gpu_count(tmp_path, gpu_limit, expected):
    # No GPU here: the limit is 1, so the two Proposer shards run one after the other even with
    # two cores free (before, both started at once); with --resources gpu=2 they do overlap,
    # which shows the check can fail. The order comes from Snakemake's own scheduler log.
    exp = _experiment(tmp_path / "exp", "resources", "warmup: {enabled: false}\n")
    targets = [f"results/round_1/shards/mmzero/proposals/{i}-of-2.parquet" for i in (1, 2)]
    args = ["-s", str(REPO / "Snakefile"), "-d", str(exp), "--cores", "2"]
    if gpu_limit:
        args += ["--resources", f"gpu={gpu_limit}"]
    args += ["--config", "shards=2", "mmzero={proposer: {n: 2, max_tokens: 8}}"]
    proc = snakemake(*targets, *args, env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = _job_events(proc.stderr, "propose_concepts")
    if expected == "one after the other":
        assert events == ["start", "end", "start", "end"], events
    else:
        assert events[:2] == ["start", "start"], events
