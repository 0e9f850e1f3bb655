"""The workflow descriptions in workflows/: Snakemake and CWL run end to end on tiny random models,
WDL and Galaxy are linted, the Dockerfile passes hadolint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from conftest import GENOMES, READS
from workflow_tools import REPO, require_module, require_tool, same_results, virnucpro_env, write_mates

sys.path.insert(0, str(REPO / "workflows" / "snakemake"))
from samplesheet import SampleSheetError, read_sample_sheet  # noqa: E402
from study import PAIRED_FILES, RESULT_FILES  # noqa: E402

SNAKEFILE = REPO / "workflows" / "snakemake" / "Snakefile"
READS = READS


def _reads(path: Path, first: int, count: int) -> Path:
    lines = READS.read_text().splitlines()[4 * first: 4 * (first + count)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=virnucpro_env(), capture_output=True, text=True, timeout=600)


# --- the sample sheet ------------------------------------------------------------------------------

def test_sheet_nf_core_names_and_paths_relative_to_the_sheet(tmp_path):
    (tmp_path / "data").mkdir()
    _reads(tmp_path / "data" / "a.fq", 0, 2)
    sheet = tmp_path / "data" / "sheet.csv"
    sheet.write_text("sample,fastq_1,fastq_2\nA,a.fq,\n")
    samples = read_sample_sheet(sheet)
    assert list(samples) == ["A"] and samples["A"].r1 == (tmp_path / "data" / "a.fq").resolve()


def test_sheet_tab_separated_with_r1(tmp_path):
    _reads(tmp_path / "a.fq", 0, 2)
    (tmp_path / "s.tsv").write_text("sample\tr1\nA\ta.fq\n\n")
    assert list(read_sample_sheet(tmp_path / "s.tsv")) == ["A"]


@pytest.mark.parametrize("body, message", [
    ("sample\tr1\tr2\nA\ta.fq\ta.fq\n", "same file as r1 and r2"),
    ("sample\tr1\nA\ta.fq\nA\ta.fq\n", "appears twice"),
    ("sample\tr1\n../x\ta.fq\n", "not usable as a directory name"),
    ("sample\tr1\nA\tmissing.fq\n", "does not exist"),
    ("name\treads\nA\ta.fq\n", "needs the columns `sample` and `r1`"),
    ("sample\tr1\n", "lists no samples"),
])
def test_sheet_refusals_say_what_to_change(tmp_path, body, message):
    _reads(tmp_path / "a.fq", 0, 2)
    (tmp_path / "s.tsv").write_text(body)
    with pytest.raises(SampleSheetError, match=message):
        read_sample_sheet(tmp_path / "s.tsv")


# --- Snakemake -------------------------------------------------------------------------------------

def _snakemake_config(sheet: Path, model_args: list[str], **extra) -> list[str]:
    settings = {"samples": str(sheet), "threads": 1, "virnucpro": f"{sys.executable} -m virnucpro",
                "predict_args": " ".join(model_args), **extra}
    return ["--config", *(f"{key}={value}" for key, value in settings.items())]


def _mates(directory: Path, name: str, first: int, count: int) -> tuple[Path, Path]:
    return write_mates(READS, directory / f"{name}_1.fq", directory / f"{name}_2.fq", first, count)


def test_snakemake_runs_a_paired_sample_as_predict_r1_r2_paired(tmp_path, model_args):
    """A sheet row with r2 plans a `predict_paired` job: `predict R1 R2 --paired`, pairs.tsv an output."""
    snakemake = require_tool("snakemake")
    _reads(tmp_path / "a.fq", 0, 2)
    _mates(tmp_path, "p", 2, 2)
    (tmp_path / "s.tsv").write_text("sample\tr1\tr2\nA\ta.fq\t\nP\tp_1.fq\tp_2.fq\n")
    done = _run([snakemake, "-s", str(SNAKEFILE), "--cores", "1", "-n", "-p",
                 *_snakemake_config(tmp_path / "s.tsv", model_args)], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", done.stdout, re.MULTILINE))
    assert counts == {"predict": "1", "predict_paired": "1", "report": "2", "study": "1", "all": "1", "total": "6"}
    commands = [line for line in done.stdout.splitlines() if " predict " in line]
    paired = [line for line in commands if "results/P" in line]
    assert len(commands) == 2 and len(paired) == 1, commands
    assert f"predict {tmp_path / 'p_1.fq'} {tmp_path / 'p_2.fq'} --paired -o results/P " in paired[0]
    assert "--paired" not in next(line for line in commands if "results/A" in line)
    assert "results/P/pairs.tsv" in done.stdout and "results/A/pairs.tsv" not in done.stdout


def test_snakemake_plans_one_predict_per_sample_without_shards(tmp_path, model_args):
    snakemake = require_tool("snakemake")
    for name in ("a.fq", "b.fq"):
        _reads(tmp_path / name, 0, 2)
    (tmp_path / "s.tsv").write_text("sample\tfastq_1\nS.1\ta.fq\nS-2\tb.fq\n")
    done = _run([snakemake, "-s", str(SNAKEFILE), "--cores", "1", "-n", "--quiet", "rules",
                 *_snakemake_config(tmp_path / "s.tsv", model_args)], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", done.stdout + done.stderr, re.MULTILINE))
    assert counts == {"predict": "2", "report": "2", "study": "1", "all": "1", "total": "6"}, done.stdout


@pytest.mark.slow  # ~20 s: two predicts, a direct run of each, reports
@pytest.mark.packaging
def test_snakemake_mixed_sheet_runs_each_sample_as_its_direct_predict(tmp_path, model_args):
    """One job per sample, no shards: the single-end sample as `predict R1`, the paired one as
    `predict R1 R2 --paired` (a rule's command is bound per variant, not by the last one defined)."""
    snakemake = require_tool("snakemake")
    _reads(tmp_path / "a.fq", 0, 4)
    _mates(tmp_path, "p", 4, 4)
    (tmp_path / "s.tsv").write_text("sample\tr1\tr2\nP\tp_1.fq\tp_2.fq\nA\ta.fq\t\n")
    done = _run([snakemake, "-s", str(SNAKEFILE), "--cores", "1", *_snakemake_config(tmp_path / "s.tsv", model_args)],
                tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for sample, inputs in [("A", ["a.fq"]), ("P", ["p_1.fq", "p_2.fq", "--paired"])]:
        direct = _run([sys.executable, "-m", "virnucpro", "predict", *inputs, "-o", f"direct-{sample}", *model_args],
                      tmp_path)
        assert direct.returncode == 0, direct.stderr
        names = RESULT_FILES[:-1] + (PAIRED_FILES if sample == "P" else [])
        assert same_results(tmp_path / "results" / sample, tmp_path / f"direct-{sample}", names) == []
    assert not (tmp_path / "results" / "A" / "pairs.tsv").exists()


@pytest.mark.packaging
def test_slurm_profile_plans_the_workflow_as_array_jobs(tmp_path, model_args):
    """The documented Slurm profile parses with the Slurm executor plugin (a dry run: no cluster here)."""
    snakemake = require_tool("snakemake")
    _reads(tmp_path / "a.fq", 0, 2)
    _mates(tmp_path, "p", 2, 2)
    (tmp_path / "s.tsv").write_text("sample\tr1\tr2\nA\ta.fq\t\nP\tp_1.fq\tp_2.fq\n")
    done = _run([snakemake, "-s", str(SNAKEFILE), "--profile", str(SNAKEFILE.parent / "profiles" / "slurm"), "-n",
                 *_snakemake_config(tmp_path / "s.tsv", model_args, shards=2)], tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", done.stdout, re.MULTILINE))
    assert counts["predict_shard"] == counts["predict_shard_paired"] == "2" and "This was a dry-run" in done.stdout
    profile = (SNAKEFILE.parent / "profiles" / "slurm" / "config.yaml").read_text()
    for rule in ("predict", "predict_paired", "predict_shard", "predict_shard_paired"):
        assert f"\n  {rule}: " in profile.split("set-resources:")[1], rule  # a GPU task, not the CPU default


@pytest.mark.slow
@pytest.mark.packaging
def test_snakemake_samples_in_shards_match_direct_runs(tmp_path, model_args):
    """3 single-end samples and a paired one x 2 shards + merge + reports + study table; each sample's
    files byte-identical to a direct `virnucpro predict` of its r1 (`R1 R2 --paired` for the paired one,
    pairs.tsv included)."""
    snakemake = require_tool("snakemake")
    _reads(tmp_path / "a.fq", 0, 12)
    _reads(tmp_path / "b.fq", 12, 12)
    (tmp_path / "c.fa").write_bytes((GENOMES / "phiX174_NC_001422.fa").read_bytes())
    _mates(tmp_path, "d", 24, 10)
    (tmp_path / "sheet.csv").write_text("sample,fastq_1,fastq_2\nA,a.fq,\nB,b.fq,\nC,c.fa,\nD,d_1.fq,d_2.fq\n")
    done = _run([snakemake, "-s", str(SNAKEFILE), "--cores", "2",
                 *_snakemake_config(tmp_path / "sheet.csv", model_args, shards=2, outdir="wf")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for sample, inputs in [("A", ["a.fq"]), ("B", ["b.fq"]), ("C", ["c.fa"]), ("D", ["d_1.fq", "d_2.fq", "--paired"])]:
        direct = _run([sys.executable, "-m", "virnucpro", "predict", *inputs, "-o", f"direct-{sample}", *model_args],
                      tmp_path)
        assert direct.returncode == 0, direct.stderr
        names = RESULT_FILES[:-1] + (PAIRED_FILES if sample == "D" else [])
        assert same_results(tmp_path / "wf" / sample, tmp_path / f"direct-{sample}", names) == []
        assert (tmp_path / "wf" / sample / "report.html").stat().st_size > 0
    assert not (tmp_path / "wf" / "A" / "pairs.tsv").exists()
    table = [row.split("\t") for row in (tmp_path / "wf" / "study" / "samples.tsv").read_text().splitlines()]
    assert table[0][:3] == ["sample", "sequences", "virus"] and table[0][6:8] == ["pairs", "virus_pairs"]
    assert [row[:2] + row[6:7] for row in table[1:]] == [["A", "12", ""], ["B", "12", ""], ["C", "1", ""],
                                                         ["D", "20", "10"]]


# --- CWL, WDL, Galaxy, containers ------------------------------------------------------------------

CWL_TOOL = REPO / "workflows" / "cwl" / "virnucpro-predict.cwl"
WDL_TASK = REPO / "workflows" / "wdl" / "virnucpro_predict.wdl"
GALAXY_TOOL = REPO / "workflows" / "galaxy" / "virnucpro_predict.xml"
DOCKERFILE = REPO / "containers" / "Dockerfile"
APPTAINER_DEF = REPO / "containers" / "virnucpro.def"


def _cwl_reads(tmp_path: Path, mode: str) -> tuple[str, list[str]]:
    """The job's read inputs for MODE (single, paired, interleaved) and the direct run's arguments."""
    if mode == "single":
        reads = _reads(tmp_path / "a.fq", 0, 12)
        return f"reads: [{{class: File, path: {reads}}}]\n", [str(reads)]
    r1, r2 = _mates(tmp_path, "p", 0, 6)
    if mode == "paired":
        return (f"reads: [{{class: File, path: {r1}}}]\nr2: {{class: File, path: {r2}}}\n",
                [str(r1), str(r2), "--paired"])
    first, second = (path.read_text().splitlines(keepends=True) for path in (r1, r2))
    interleaved = tmp_path / "interleaved.fq"  # mate 1, mate 2 of each pair in turn
    interleaved.write_text("".join("".join(first[i:i + 4] + second[i:i + 4]) for i in range(0, len(first), 4)))
    return f"reads: [{{class: File, path: {interleaved}}}]\ninterleaved: true\n", [str(interleaved), "--interleaved"]


@pytest.mark.packaging
@pytest.mark.parametrize("mode", ["single", "paired", "interleaved"])
def test_cwl_tool_runs_without_container_and_matches_a_direct_run(tmp_path, tiny_models, model_args, mode):
    """Single-end, `r2` (--paired) and `interleaved` jobs: the result files (pairs.tsv for a paired
    job) byte-identical to the matching direct `virnucpro predict`."""
    cwltool = require_tool("cwltool")
    reads, direct_inputs = _cwl_reads(tmp_path, mode)
    (tmp_path / "job.yml").write_text(
        reads +
        f"esm: {{class: Directory, path: {tiny_models / 'esm2'}}}\n"
        f"dnabert: {{class: Directory, path: {tiny_models / 'dnabert-s'}}}\n"
        f"classifier: {{class: File, path: {tiny_models / 'classifier.pth'}}}\n"
        "device: cpu\nwrite_hits: true\n")
    bin_dir = Path(sys.executable).parent  # where `virnucpro` is installed beside the test interpreter
    env = {**virnucpro_env(), "PATH": f"{bin_dir}:{virnucpro_env()['PATH']}"}
    done = subprocess.run([cwltool, "--no-container", "--preserve-environment", "PYTHONPATH",
                           "--outdir", str(tmp_path / "cwl"), str(CWL_TOOL), str(tmp_path / "job.yml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    direct = _run([sys.executable, "-m", "virnucpro", "predict", *direct_inputs, "-o", "direct", "--write-hits",
                   *model_args], tmp_path)
    assert direct.returncode == 0, direct.stderr
    names = RESULT_FILES[:-1] + ["viral.fa"] + (PAIRED_FILES if mode != "single" else [])
    assert same_results(tmp_path / "cwl" / "results", tmp_path / "direct", names) == []
    assert (tmp_path / "cwl" / "results" / "pairs.tsv").exists() == (mode != "single")
    assert ('"pairs": null' in done.stdout) == (mode == "single")  # the optional output


@pytest.mark.packaging
def test_wdl_task_passes_miniwdl_check_strict_with_shellcheck():
    miniwdl, shellcheck = require_tool("miniwdl"), require_tool("shellcheck")
    env = {**virnucpro_env(), "PATH": f"{Path(shellcheck).parent}:{virnucpro_env()['PATH']}"}
    done = subprocess.run([miniwdl, "check", "--strict", str(WDL_TASK)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "CommandShellCheck" not in done.stdout, done.stdout + done.stderr
    assert "gpu: true" in WDL_TASK.read_text()


# Renders the task's command with miniwdl's own evaluator (no container runtime here to run it).
_RENDER_WDL_COMMAND = """
import json, sys
import WDL
task = WDL.load(sys.argv[1]).tasks[0]
stdlib = WDL.StdLib.Base("1.0")
env = WDL.values_from_json(json.loads(sys.argv[2]), task.available_inputs, task.required_inputs)
for decl in task.inputs:
    if not env.has_binding(decl.name):
        env = env.bind(decl.name, decl.expr.eval(env, stdlib=stdlib) if decl.expr else WDL.Value.Null())
print(task.command.eval(env, stdlib=stdlib).value)
"""


@pytest.mark.packaging
@pytest.mark.parametrize("inputs, expected", [
    ({"reads": ["a.fq"]}, "virnucpro predict a.fq -o results"),
    ({"reads": ["r1.fq"], "r2": "r2.fq"}, "virnucpro predict r1.fq r2.fq --paired -o results"),
    ({"reads": ["mates.fq"], "interleaved": True}, "virnucpro predict mates.fq --interleaved -o results"),
])
def test_wdl_task_command_passes_r2_as_paired_and_interleaved(inputs, expected):
    miniwdl = Path(require_tool("miniwdl"))
    interpreter = miniwdl.read_text().splitlines()[0].removeprefix("#!").strip()  # the Python miniwdl runs on
    done = subprocess.run([interpreter, "-c", _RENDER_WDL_COMMAND, str(WDL_TASK), json.dumps({**inputs, "models_dir": "m"})],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert " ".join(done.stdout.replace("\\\n", " ").split()).count(expected) == 1, done.stdout


@pytest.mark.packaging
def test_galaxy_tool_passes_planemo_lint(tmp_path):
    planemo = require_tool("planemo")
    done = subprocess.run([planemo, "lint", "--fail_level", "warn", str(GALAXY_TOOL)], cwd=tmp_path,
                          env={**virnucpro_env(), "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


# Renders the tool's Cheetah command as Galaxy would, with planemo's Cheetah (no Galaxy server here):
# a dataset is its path, with .ext; a conditional is a dict.
_RENDER_GALAXY_COMMAND = """
import json, sys
import xml.etree.ElementTree as ElementTree
from Cheetah.Template import Template

class Dataset:
    def __init__(self, path):
        self.path, self.ext = path, "fastqsanger"
    def __str__(self):
        return self.path

def datasets(value):
    if isinstance(value, dict):
        return {key: datasets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [datasets(item) for item in value]
    return Dataset(value) if isinstance(value, str) and value.endswith(".fq") else value

command = ElementTree.parse(sys.argv[1]).find("command").text
params = {"model_type": "300", "threshold": 0.5, "write_hits": "--write-hits", "models_dir": ""}
params.update(datasets(json.loads(sys.argv[2])))
print(" ".join(str(Template(command, searchList=[params])).split()))
"""
_PREDICT = "virnucpro predict 'input_0.fastqsanger'"


@pytest.mark.packaging
@pytest.mark.parametrize("input_type, expected", [
    ({"mode": "single", "inputs": ["a.fq", "b.fq"]}, f"{_PREDICT} 'input_1.fastqsanger' -o results"),
    ({"mode": "paired", "forward": "r1.fq", "reverse": "r2.fq"}, f"{_PREDICT} 'input_1.fastqsanger' --paired -o"),
    ({"mode": "paired_collection", "pair": {"forward": "r1.fq", "reverse": "r2.fq"}},
     f"{_PREDICT} 'input_1.fastqsanger' --paired -o"),
    ({"mode": "interleaved", "interleaved": "i.fq"}, f"{_PREDICT} --interleaved -o results"),
])
def test_galaxy_command_for_single_paired_and_interleaved_reads(input_type, expected):
    planemo = Path(require_tool("planemo"))
    interpreter = planemo.read_text().splitlines()[0].removeprefix("#!").strip()  # the Python planemo runs on
    done = subprocess.run([interpreter, "-c", _RENDER_GALAXY_COMMAND, str(GALAXY_TOOL),
                           json.dumps({"input_type": input_type})], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout, done.stdout
    first = (input_type.get("inputs") or [input_type.get("forward") or input_type.get("interleaved")
                                          or input_type["pair"]["forward"]])[0]
    assert done.stdout.startswith(f"ln -s '{first}' 'input_0.fastqsanger' && "), done.stdout


def test_galaxy_pairs_output_only_for_paired_reads_and_its_test_data_exist():
    tool = ElementTree.parse(GALAXY_TOOL).getroot()
    (pairs,) = [data for data in tool.iter("data") if data.get("name") == "pairs"]
    assert pairs.get("from_work_dir") == "results/pairs.tsv"
    assert pairs.findtext("filter") == "input_type['mode'] != 'single'"
    modes = [option.get("value") for option in tool.find("inputs/conditional/param").iter("option")]
    assert modes == ["single", "paired", "paired_collection", "interleaved"]
    tested = {param.get("value") for param in tool.find("tests").iter("param") if param.get("name") == "mode"}
    assert tested == set(modes)  # planemo test (needs the models) would run each layout once
    files = {node.get("value") for node in tool.find("tests").iter() if node.tag in ("param", "element")
             and node.get("ftype")}
    assert files and all((GALAXY_TOOL.parent / "test-data" / name).is_file() for name in files), files


@pytest.mark.packaging
def test_dockerfile_passes_hadolint():
    hadolint = require_tool("hadolint")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.packaging
def test_apptainer_definition_parses_matches_the_dockerfile_and_its_post_passes_shellcheck(tmp_path):
    """No apptainer here: spython parses the definition (a misspelled section would drop its
    commands), the image recipe must match the linted Dockerfile's pins, and %post is shellchecked."""
    require_module("spython")
    shellcheck = require_tool("shellcheck")
    from spython.main.parse.parsers import SingularityParser

    recipe = next(iter(SingularityParser(str(APPTAINER_DEF)).recipe.values()))
    dockerfile = DOCKERFILE.read_text()
    assert f"FROM {recipe.fromHeader}\n" in dockerfile
    post = "\n".join(recipe.install)
    apt_pins = re.search(r"apt-get install -y --no-install-recommends (.+?) \\?\n", dockerfile).group(1)
    torch_pin = re.search(r"ARG TORCH_VERSION=(\S+)", dockerfile).group(1)
    for pin in [apt_pins, f'"torch=={torch_pin}"', "--constraint /src/containers/constraints.txt /src"]:
        assert pin in post, pin
    assert "VIRNUCPRO_MODELS=/models" in recipe.environ and "virnucpro --version" in post
    (tmp_path / "post.sh").write_text("#!/bin/sh\nset -eu\n" + post + "\n")
    done = subprocess.run([shellcheck, str(tmp_path / "post.sh")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout


def test_every_description_names_the_package_version():
    """The version lives in virnucpro/__init__.py; the descriptions that pin an image or a package
    must say the same, so a release cannot ship them pointing at the previous one."""
    from virnucpro import __version__

    pinned = {CWL_TOOL: f"virnucpro:{__version__}", WDL_TASK: f'"virnucpro:{__version__}"',
              GALAXY_TOOL: f'version="{__version__}+galaxy', REPO / "containers" / "virnucpro.def": f"version {__version__}",
              DOCKERFILE: f"virnucpro:{__version__}"}
    pinned[REPO / "CHANGELOG.md"] = f"## [{__version__}]"
    stale = [path.name for path, text in pinned.items() if text not in path.read_text()]
    assert stale == []
