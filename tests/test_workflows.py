"""The GitHub workflows in ``.github/workflows/`` keep their contract.

``make lint`` checks them against GitHub's schema and with zizmor; these tests check what those
cannot know: CI runs the README's command (``make test``) and nothing else, every action is pinned
to a commit, nothing is published from main before the tests passed on that commit, a release goes
to PyPI through trusted publishing only, the book workflow deploys the site with deploy-pages and
pushes ``make colab``'s notebooks, pinned to what built them, to the branch the site's Colab
buttons open, and each job gets only the permissions its own work needs. The Sphinx extension
that points those buttons at that branch (``_ext/colab_branch.py``) is tested here too, on the
theme's buttons as plain data.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("test", "release", "book", "drift")
SHA = re.compile(r"[^@\s]+@[0-9a-f]{40}")
# The only write permissions any job may hold: (workflow, job) -> scopes
WRITES = {
    ("book", "deploy"): {"pages", "id-token"},
    ("book", "colab"): {"contents"},
    ("release", "pypi"): {"id-token"},
    ("release", "github-release"): {"contents"},
    # the job that calls book.yml grants what book.yml's deploy and colab jobs need
    ("release", "book"): {"contents", "pages", "id-token"},
    ("drift", "report"): {"issues"},
}


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())


def triggers(workflow: dict) -> dict:
    """The ``on:`` mapping (PyYAML reads the bare key ``on`` as the boolean True)."""
    on = workflow.get("on", workflow.get(True))
    return {on: None} if isinstance(on, str) else dict.fromkeys(on) if isinstance(on, list) else on


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job].get("steps", [])


def runs(workflow: dict, job: str) -> list[str]:
    """The ``run:`` scripts of a job, stripped."""
    return [step["run"].strip() for step in steps(workflow, job) if "run" in step]


def uses(workflow: dict) -> list[str]:
    """Every ``uses:`` of a workflow: the steps' and the jobs' (reusable workflows)."""
    found = []
    for job in workflow["jobs"].values():
        found += [job["uses"]] if "uses" in job else []
        found += [step["uses"] for step in job.get("steps", []) if "uses" in step]
    return found


def step_using(workflow: dict, job: str, action: str) -> dict:
    (step,) = [s for s in steps(workflow, job) if s.get("uses", "").split("@")[0] == action]
    return step


def unpinned(refs: list[str]) -> list[str]:
    """The references not pinned to a full commit SHA (local ``./`` actions excepted)."""
    return [ref for ref in refs if not ref.startswith("./") and not SHA.fullmatch(ref)]


def write_scopes(workflow: dict) -> dict[str, set[str]]:
    """{job: scopes it may write}; ``write-all`` counts as ``*``. The top level counts for a job
    that sets no permissions of its own."""
    top = workflow.get("permissions")
    found = {}
    for name, job in workflow["jobs"].items():
        perms = job.get("permissions", top)
        if perms == "write-all":
            found[name] = {"*"}
        elif isinstance(perms, dict):
            found[name] = {scope for scope, level in perms.items() if level == "write"}
        else:
            found[name] = {"*"} if perms is None else set()  # none given: the repository default
    return {name: scopes for name, scopes in found.items() if scopes}


def test_the_checks_below_notice_a_tag_a_branch_and_write_all():
    assert unpinned(["actions/checkout@v7", "o/r@main", "o/r@" + "a" * 40, "./local"]) == [
        "actions/checkout@v7",
        "o/r@main",
    ]
    assert unpinned(["o/r@" + "A" * 40, "o/r@" + "a" * 39]) == [
        "o/r@" + "A" * 40,
        "o/r@" + "a" * 39,
    ]
    bad = {"permissions": "write-all", "jobs": {"a": {}, "b": {"permissions": {"pages": "write"}}}}
    assert write_scopes(bad) == {"a": {"*"}, "b": {"pages"}}
    assert write_scopes({"jobs": {"a": {}}}) == {"a": {"*"}}  # no permissions: the default


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_to_a_commit_with_its_version_in_a_comment(name):
    assert not unpinned(uses(load(name))), (
        f"{name}.yml: not pinned to a SHA: {unpinned(uses(load(name)))}"
    )
    for line in (WORKFLOWS / f"{name}.yml").read_text().splitlines():
        if re.match(r"\s*(- )?uses:", line) and "uses: ./" not in line:
            assert re.search(r"@[0-9a-f]{40} # v\d+(\.\d+)*$", line), f"{name}.yml: {line.strip()}"


@pytest.mark.parametrize("name", NAMES)
def test_permissions_are_minimal(name):
    workflow = load(name)
    assert workflow.get("permissions") in ({}, {"contents": "read"}), (
        f"{name}.yml: top-level permissions {workflow.get('permissions')!r}"
    )
    allowed = {job: scopes for (wf, job), scopes in WRITES.items() if wf == name}
    assert write_scopes(workflow) == allowed
    for job in workflow["jobs"]:
        for step in steps(workflow, job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, (
                    f"{name}.yml, job {job}: checkout keeps the token in .git/config"
                )


@pytest.mark.parametrize(
    ("name", "job"), [("test", "test"), ("test", "test-min"), ("drift", "drift")]
)
def test_jobs_that_run_the_unit_tests_check_out_the_whole_history(name, job):
    # tests/test_release.py reads the commit that set the version: a shallow clone lacks it
    checkout = step_using(load(name), job, "actions/checkout")
    assert checkout["with"].get("fetch-depth") == 0, f"{name}.yml, {job}: fetch-depth: 0"


@pytest.mark.parametrize("name", NAMES)
def test_every_job_has_a_timeout_and_the_workflow_a_concurrency_group(name):
    workflow = load(name)
    assert workflow.get("concurrency", {}).get("group"), f"{name}.yml: no concurrency group"
    for job_name, job in workflow["jobs"].items():
        if "uses" in job:  # a call of a reusable workflow: its own jobs have the timeouts
            continue
        assert 0 < job.get("timeout-minutes", 0) <= 360, f"{name}.yml, job {job_name}: timeout"


def test_ci_runs_exactly_make_test_on_every_push_and_pull_request():
    workflow = load("test")
    on = triggers(workflow)
    assert set(on) == {"push", "pull_request", "workflow_call"}
    # main is tested by release.yml, which calls this workflow before it publishes anything
    assert on["push"] == {"branches-ignore": ["main"]} and not on["pull_request"]
    assert load("release")["jobs"]["tests"]["uses"] == "./.github/workflows/test.yml"
    assert runs(workflow, "test")[-1] == "make test"
    assert "make test" in (ROOT / ".ci" / "run").read_text(), "CI and .ci/run run the same"
    assert runs(workflow, "test-min")[-1] == "make test-min"
    assert runs(workflow, "test-colab")[-1] == "make test-colab"
    for job in ("test", "test-colab"):
        assert "3.13" in workflow["jobs"][job]["strategy"]["matrix"]["python"], f"{job}: Colab's"
    assert workflow["env"]["TORCH_INDEX"].endswith("/whl/cpu"), "CPU wheels on CPU runners"


def needs(workflow: dict, job: str) -> set[str]:
    """Every job ``job`` waits for, directly or through others."""
    direct = workflow["jobs"][job].get("needs", [])
    direct = [direct] if isinstance(direct, str) else direct
    return set(direct).union(*(needs(workflow, other) for other in direct))


def test_nothing_is_published_before_the_tests_pass_on_that_commit_of_main():
    workflow = load("release")
    assert triggers(workflow) == {"push": {"branches": ["main"]}}, "main only, no manual runs"
    for job in workflow["jobs"]:
        if job != "tests":
            assert "tests" in needs(workflow, job), f"release.yml: {job} does not wait for tests"
    for name in ("book", "release"):
        assert "secrets." not in (WORKFLOWS / f"{name}.yml").read_text(), "no stored token"
    book = workflow["jobs"]["book"]
    assert book["uses"] == "./.github/workflows/book.yml"
    assert book["with"] == {"pin": "${{ needs.plan.outputs.pin }}"}
    assert "needs.github-release.result == 'success'" in book["if"], "after the release is out"
    assert triggers(load("book")) == {"workflow_call": triggers(load("book"))["workflow_call"]}


def test_a_release_is_checked_built_published_then_tagged():
    workflow = load("release")
    assert workflow["jobs"]["dist"]["if"] == "needs.plan.outputs.release == 'true'"
    scripts = "\n".join(runs(workflow, "dist"))
    assert "make release-check" in scripts and 'tools/release.py check --tag "v$VERSION"' in scripts
    assert not any("actions/cache" in u for u in uses({"jobs": {"d": workflow["jobs"]["dist"]}}))
    pypi = workflow["jobs"]["pypi"]
    assert pypi["environment"]["name"] == "pypi" and needs(workflow, "pypi") >= {"dist"}
    assert step_using(workflow, "pypi", "pypa/gh-action-pypi-publish")
    assert needs(workflow, "github-release") >= {"pypi"}
    (create,) = runs(workflow, "github-release")
    assert "tools/release.py notes" in create and 'gh release create "v$VERSION"' in create
    (decide,) = runs(workflow, "plan")
    assert 'pin="idlmam[tune]==$version"' in decide
    assert 'pin="idlmam[tune] @ git+$REPOSITORY_URL@$GITHUB_SHA"' in decide


def test_the_book_is_built_then_deployed_to_pages():
    workflow = load("book")
    assert triggers(workflow)["workflow_call"]["inputs"]["pin"]["required"] is True
    assert runs(workflow, "build")[-2:] == ["make book", "make colab"]
    (colab,) = [s for s in steps(workflow, "build") if s.get("run") == "make colab"]
    assert colab["env"] == {"PIN": "${{ inputs.pin }}"}
    cache = [s for s in steps(workflow, "build") if s.get("name") == "Cache the executed pages"]
    assert "_build/.jupyter_cache" in cache[0]["with"]["path"]
    assert step_using(workflow, "build", "actions/upload-pages-artifact")["with"] == {
        "path": "_build/html"
    }
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert step_using(workflow, "deploy", "actions/deploy-pages")
    assert step_using(workflow, "deploy", "actions/configure-pages")


def test_the_colab_notebooks_are_pushed_to_the_branch_the_buttons_open():
    workflow = load("book")
    upload = step_using(workflow, "build", "actions/upload-artifact")["with"]
    assert upload["path"] == "_build/colab"
    job = workflow["jobs"]["colab"]
    assert job["needs"] == "build"
    download = step_using(workflow, "colab", "actions/download-artifact")["with"]
    assert download["name"] == upload["name"]
    resolve, push = [step for step in steps(workflow, "colab") if "run" in step]
    assert 'download -q --no-deps -d "$RUNNER_TEMP/got" "$PIN"' in resolve["run"], "it resolves"
    assert push["working-directory"] == download["path"]
    pushed = re.findall(r"HEAD:refs/heads/([\w.-]+)", push["run"])
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert pushed == [config["sphinx"]["config"]["colab_branch"]] == ["colab"]
    assert config["repository"]["branch"] == "main", "edit buttons stay on main"
    assert config["sphinx"]["local_extensions"]["colab_branch"] == "_ext"


def test_dependabot_groups_the_actions_and_the_pins_and_leaves_the_recorded_versions():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(updates) == {"github-actions", "pip"}
    assert all(u["groups"] for u in updates.values()), "one pull request per ecosystem"
    assert set(updates["pip"]["exclude-paths"]) == {"constraints-min.txt", "constraints-colab.txt"}
    pip = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"][-1]["pip"]
    assert "-r constraints.txt" in pip, "environment.yml follows constraints.txt by itself"


def test_drift_installs_the_newest_releases_and_fails_on_our_deprecations():
    workflow = load("drift")
    on = triggers(workflow)
    assert on["schedule"] and "workflow_dispatch" in on
    scripts = "\n".join(runs(workflow, "drift"))
    assert "constraints" not in scripts, "drift installs without the pins"
    assert 'pip install -q --index-url "$TORCH_INDEX" torch torchvision' in scripts
    assert "-e '.[all]'" in scripts
    assert "3.13" in workflow["jobs"]["drift"]["strategy"]["matrix"]["python"]
    report = workflow["jobs"]["report"]
    assert report["if"] == "failure()" and set(report["needs"]) == {"drift", "colab-stack"}
    assert "gh issue create" in runs(workflow, "report")[0]
    assert "git diff --exit-code -- constraints-colab.txt" in runs(workflow, "colab-stack")[-1]
    assert "error::DeprecationWarning:" in scripts and "error::FutureWarning:" in scripts
    assert "make unit VENV=.venv-drift" in scripts
    assert "make book VENV=.venv-drift IDL_BUDGET=quick" in scripts


# ----------------------------------------------------------------- _ext/colab_branch.py


def colab_extension():
    spec = importlib.util.spec_from_file_location("colab_branch", ROOT / "_ext" / "colab_branch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _App:
    """What the extension reads of a Sphinx application: ``app.config``."""

    def __init__(self, colab_branch: str):
        self.config = type("Config", (), {})()
        self.config.colab_branch = colab_branch
        self.config.html_theme_options = {
            "repository_branch": "main",
            "launch_buttons": {"colab_url": "https://colab.research.google.com/"},
        }


def header_buttons() -> list[dict]:
    """The buttons sphinx-book-theme 1.3 puts in a notebook page's context (shortened)."""
    repo = "idlmam/modern-training-techniques"
    return [
        {
            "label": "launch-buttons",
            "buttons": [
                {"url": f"https://mybinder.org/v2/gh/{repo}/main?urlpath=tree/book/a.ipynb"},
                {"url": f"https://colab.research.google.com/github/{repo}/blob/main/book/a.ipynb"},
            ],
        },
        {
            "label": "source-buttons",
            "buttons": [{"url": f"https://github.com/{repo}/edit/main/book/a.py"}],
        },
        {
            "label": "download-buttons",
            "buttons": [{"url": "../_sources/book/a.ipynb", "text": ".ipynb"}],
        },
    ]


def test_the_extension_moves_only_the_colab_button_to_the_colab_branch():
    ext = colab_extension()
    context = {"header_buttons": header_buttons()}
    ext._retarget_buttons(_App("colab"), "book/a", "page.html", context, None)
    urls = [b["url"] for group in context["header_buttons"] for b in group["buttons"]]
    before = [b["url"] for group in header_buttons() for b in group["buttons"]]
    assert urls[1] == before[1].replace("/blob/main/", "/blob/colab/")
    # the download menu gains the same notebook first, as a file
    repo = "idlmam/modern-training-techniques"
    assert urls[3] == f"https://github.com/{repo}/raw/colab/book/a.ipynb"
    assert urls[0] == before[0] and urls[2] == before[2] and urls[4] == before[3]
    unchanged = {"header_buttons": header_buttons()}
    ext._retarget_buttons(_App(""), "book/a", "page.html", unchanged, None)
    assert unchanged["header_buttons"] == header_buttons()


def test_the_extension_fails_on_a_colab_link_of_another_shape():
    ext = colab_extension()
    with pytest.raises(ext.ExtensionError, match="/blob/main/"):
        ext.retarget("https://colab.research.google.com/github/o/r/tree/x/a.ipynb", "main", "colab")
    colab = "https://colab.research.google.com"
    for link in (
        f"{colab}/github/o/r/tree/x/a.ipynb",
        f"{colab}/drive/abc",
        "https://x/github/o/r/blob/a",
    ):
        with pytest.raises(ext.ExtensionError, match="not a Colab link to a GitHub file"):
            ext.download_link(link, colab)
