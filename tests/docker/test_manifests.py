"""docker/: the images install refinery as CI does (constraints.txt, the Makefile's extras, the same
Python), and the KubeRay manifests are well formed and agree with the images, the pins and the CLI.
Everything is read from the project's files; nothing here restates a version."""

import os
import re
import shlex
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKER = os.path.join(REPO, "docker")
KUBERAY = os.path.join(DOCKER, "kuberay")
TEST_ONLY_SCRIPTS = {"corpus/report/install_chromium.sh"}
"""Set-up scripts that only the test suite needs (a browser), so the node image leaves them out."""


def read(*parts) -> str:
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def constraints() -> dict[str, str]:
    pins = {}
    for line in read("constraints.txt").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def pyproject() -> dict:
    return tomllib.loads(read("pyproject.toml"))


def makefile_extras() -> list[str]:
    return re.search(r"^EXTRAS\s*:?=\s*(\S+)", read("Makefile"), re.M).group(1).split(",")


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for line in read("docker", dockerfile).splitlines():
        if line.lstrip().startswith("#") and not pending:
            continue
        if line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            keyword, _, args = pending.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
        pending = ""
    return out


def pip_installs(dockerfile: str) -> list[list[str]]:
    """The argument lists of every `pip install` in the RUN steps."""
    found = []
    for keyword, args in instructions(dockerfile):
        if keyword == "RUN":
            command: list[str] = []
            for word in shlex.split(args) + ["&&"]:
                if word not in ("&&", "||", ";"):
                    command.append(word)
                    continue
                if command[:2] == ["pip", "install"] or command[1:4] == ["-m", "pip", "install"]:
                    found.append(command[command.index("install") + 1:])
                command = []
    return found


def project_install(dockerfile: str) -> tuple[list[str], list[str]]:
    """(pip options, extras) of the step that installs the project itself (`.[extras]`)."""
    for args in pip_installs(dockerfile):
        targets = [a for a in args if a.startswith(".[") or a == "."]
        if targets:
            extras = targets[0][2:-1].split(",") if targets[0].startswith(".[") else []
            return args, extras
    pytest.fail(f"{dockerfile}: no `pip install .[extras]` of the project")


def python_minor() -> str:
    """The oldest Python that requires-python allows: the one CI runs (`>=3.11` -> 3.11)."""
    return re.search(r">=\s*(\d+\.\d+)", pyproject()["project"]["requires-python"]).group(1)


@pytest.mark.parametrize("dockerfile", ["Dockerfile.cpu", "Dockerfile.gpu"])
def test_image_installs_the_project_with_ci_pins_and_python(dockerfile):
    steps = instructions(dockerfile)
    base = [a for k, a in steps if k == "FROM"]
    assert len(base) == 1 and re.fullmatch(rf"python:{re.escape(python_minor())}(-[a-z0-9.-]+)?", base[0]), base
    copied = " ".join(a for k, a in steps if k == "COPY").split()
    for needed in ["pyproject.toml", "constraints.txt", "README.md"] + [
            p.rstrip("*") for p in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]]:
        assert needed in copied, f"{dockerfile} does not COPY {needed}"
    options, _ = project_install(dockerfile)
    assert "constraints.txt" in options and options[options.index("constraints.txt") - 1] in ("-c", "--constraint")
    assert "-e" not in options  # an image installs the package, not a link to a source tree
    pins = constraints()
    for args in pip_installs(dockerfile):
        for arg in args:
            if "==" in arg:  # a pin written in the Dockerfile must be the project's pin
                name, version = arg.split("==")
                assert pins.get(name.lower()) == version, f"{dockerfile} pins {arg}, constraints.txt says " \
                                                          f"{pins.get(name.lower())}"
    assert any(k == "USER" and a not in ("root", "0") for k, a in steps), "the image must not run as root"


def test_cpu_image_has_the_makefile_extras_and_runs_its_setup_scripts():
    _, extras = project_install("Dockerfile.cpu")
    assert sorted(extras) == sorted(makefile_extras())
    run_steps = " ".join(a for k, a in instructions("Dockerfile.cpu") if k == "RUN")
    makefile_scripts = set(re.findall(r"(?:^|\s)(?:sh|bash)\s+(\S+\.sh)", read("Makefile"), re.M))
    for script in makefile_scripts - TEST_ONLY_SCRIPTS:
        assert script in run_steps, f"`make setup` runs {script}; Dockerfile.cpu must too"
    # The image checks itself: the demo job validates with the installed CLI.
    assert "refinery validate jobs/" in run_steps


def test_gpu_image_installs_torch_and_megatron_from_the_train_extra_at_the_pinned_versions():
    _, extras = project_install("Dockerfile.gpu")
    assert "train" in extras
    train = {Requirement(r).name.lower(): Requirement(r) for r in pyproject()["project"]["optional-dependencies"]["train"]}
    pins = constraints()
    for package in ("torch", "megatron-core"):
        assert package in train and package in pins, f"{package}: in the train extra and pinned in constraints.txt"
    run_steps = " ".join(a for k, a in instructions("Dockerfile.gpu") if k == "RUN")
    assert "torch.version.cuda" in run_steps, "the build must fail on a CPU-only torch"


def test_every_pin_satisfies_the_project_requirements():
    """constraints.txt and pyproject.toml cannot drift apart: each pin is allowed by each requirement."""
    project = pyproject()["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    pins = constraints()
    for req in requirements:
        pinned = pins.get(req.name.lower())
        if pinned is not None:
            assert req.specifier.contains(pinned, prereleases=True), f"{req} does not allow the pin {pinned}"


# -- KubeRay ------------------------------------------------------------------------------------------

def manifests() -> dict[str, list[dict]]:
    out = {}
    for name in sorted(os.listdir(KUBERAY)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(KUBERAY, name), encoding="utf-8") as f:
                out[name] = [d for d in yaml.safe_load_all(f) if d]
    return out


def by_kind(kind: str) -> list[dict]:
    return [d for docs in manifests().values() for d in docs if d["kind"] == kind]


def cluster_specs() -> list[tuple[str, dict]]:
    specs = [(f"RayCluster {d['metadata']['name']}", d["spec"]) for d in by_kind("RayCluster")]
    specs += [(f"RayJob {d['metadata']['name']}", d["spec"]["rayClusterSpec"]) for d in by_kind("RayJob")]
    return specs


def groups(spec: dict) -> list[tuple[str, dict]]:
    return [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec["workerGroupSpecs"]]


def image_tags() -> dict[str, str]:
    """Image tag each Dockerfile's build command gives: {'Dockerfile.cpu': 'refinery-cpu:0.1.0', ...}."""
    tags = {}
    for name in ("Dockerfile.cpu", "Dockerfile.gpu"):
        tags[name] = re.search(rf"docker build -f docker/{re.escape(name)} -t (\S+) \.", read("docker", name)).group(1)
    return tags


def test_manifests_are_ray_io_v1_with_the_pinned_ray():
    assert by_kind("RayCluster") and by_kind("RayJob")
    for kind in ("RayCluster", "RayJob"):
        for doc in by_kind(kind):
            assert doc["apiVersion"] == "ray.io/v1"
    for where, spec in cluster_specs():
        assert spec["rayVersion"] == constraints()["ray"], where


def test_images_resources_and_groups():
    version = pyproject()["project"]["version"]
    tags = image_tags()
    assert tags == {"Dockerfile.cpu": f"refinery-cpu:{version}", "Dockerfile.gpu": f"refinery-gpu:{version}"}
    for where, spec in cluster_specs():
        names = [n for n, _ in groups(spec)]
        assert len(names) == len(set(names)), f"{where}: group names repeat"
        for name, group in groups(spec):
            if name != "head":
                assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], f"{where}/{name}"
            (container,) = group["template"]["spec"]["containers"]
            res = container["resources"]
            gpu = "nvidia.com/gpu" in res.get("limits", {})
            assert container["image"] == tags["Dockerfile.gpu" if gpu else "Dockerfile.cpu"], f"{where}/{name}"
            # Ray sizes itself from the limits; equal requests keep the scheduler from overcommitting.
            assert res["requests"] == res["limits"] and {"cpu", "memory"} <= set(res["limits"]), f"{where}/{name}"
        head = spec["headGroupSpec"]
        assert head["template"]["spec"]["containers"][0]["image"] == tags["Dockerfile.cpu"]


def test_security_defaults():
    for where, spec in cluster_specs():
        assert spec["authOptions"]["mode"] == "token", where
        assert spec["headGroupSpec"].get("serviceType", "ClusterIP") == "ClusterIP", where
        assert "dashboard-host" not in spec["headGroupSpec"]["rayStartParams"], "keep KubeRay's default"
    (policy,) = by_kind("NetworkPolicy")
    selected = policy["spec"]["podSelector"]["matchLabels"]
    for where, spec in cluster_specs():
        for name, group in groups(spec):
            labels = group["template"]["metadata"]["labels"]
            assert selected.items() <= labels.items(), f"{where}/{name} is outside the NetworkPolicy"


def test_every_pod_mounts_the_shared_output_volume_and_shm():
    (claim,) = by_kind("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    mounts = set()
    for where, spec in cluster_specs():
        for name, group in groups(spec):
            pod = group["template"]["spec"]
            volumes = {v["name"]: v for v in pod["volumes"]}
            for m in pod["containers"][0]["volumeMounts"]:
                v = volumes[m["name"]]
                if "persistentVolumeClaim" in v:
                    assert v["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
                    mounts.add(m["mountPath"])
                if m["mountPath"] == "/dev/shm":
                    assert v["emptyDir"]["medium"] == "Memory"
            assert "/dev/shm" in [m["mountPath"] for m in pod["containers"][0]["volumeMounts"]], f"{where}/{name}"
    assert len(mounts) == 1, f"pods mount the output volume at different paths: {mounts}"


def test_rayjob_entrypoint_is_the_cli_on_a_valid_job_with_output_on_the_shared_volume(capsys):
    from jobs.cli import main

    workdir = [a for k, a in instructions("Dockerfile.cpu") if k == "WORKDIR"][-1]
    (mount,) = {m["mountPath"] for _, spec in cluster_specs() for _, g in groups(spec)
                for m in g["template"]["spec"]["containers"][0]["volumeMounts"] if m["mountPath"] != "/dev/shm"}
    for job in by_kind("RayJob"):
        argv = shlex.split(job["spec"]["entrypoint"])
        assert argv[:2] == ["refinery", "build"] and re.fullmatch(r"jobs/[\w.-]+\.yaml", argv[2])
        assert argv[3:5] == ["--address", "auto"]
        assert argv[argv.index("--output") + 1].startswith(mount + "/")
        assert yaml.safe_load(job["spec"]["runtimeEnvYAML"])["working_dir"] == workdir
        assert main(["validate", os.path.join(REPO, argv[2])]) == 0, capsys.readouterr().err
