"""What deploy reads: templates as installed package data or a given path, the Glue script
from the installed glue_job package, and the packaging that installs them."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest

import glue_job
from backend.cli import main as cli_main
from telcopulse_deploy import deploy as deploy_module
from telcopulse_deploy.deploy import (
    BOOTSTRAP_TEMPLATE,
    ENTRY_SCRIPT,
    MAIN_TEMPLATE,
    DeployError,
    find_template,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", [MAIN_TEMPLATE, BOOTSTRAP_TEMPLATE])
def test_the_templates_are_the_installed_copies_of_infra(name):
    installed = find_template(name)

    assert installed.read_bytes() == (ROOT / "infra" / name).read_bytes()


def test_a_given_template_wins_over_the_installed_one(tmp_path):
    given = tmp_path / "mine.yaml"
    given.write_text("Resources: {}\n")

    assert find_template(MAIN_TEMPLATE, given) == given


@pytest.mark.parametrize(
    ("name", "option"),
    [(MAIN_TEMPLATE, "--template"), (BOOTSTRAP_TEMPLATE, "--bootstrap-template")],
)
def test_a_given_template_that_is_not_there_is_named(tmp_path, name, option):
    with pytest.raises(DeployError) as raised:
        find_template(name, tmp_path / "missing.yaml")

    assert (
        str(raised.value)
        == f"no template at {tmp_path / 'missing.yaml'}: give {option} an existing file"
    )


@pytest.mark.parametrize(
    ("name", "option"),
    [(MAIN_TEMPLATE, "--template"), (BOOTSTRAP_TEMPLATE, "--bootstrap-template")],
)
def test_without_an_installed_template_or_a_path_deploy_says_what_to_do(monkeypatch, name, option):
    monkeypatch.setattr(deploy_module, "TEMPLATES_PACKAGE", "telcopulse_deploy.not_installed")

    with pytest.raises(DeployError) as raised:
        find_template(name)

    assert str(raised.value) == (
        f"infra/{name} is not installed with the deploy tooling: reinstall TelcoPulse "
        f"(pip install -e . in its checkout) or give the template with {option} PATH"
    )


def test_cli_deploy_with_a_missing_template_fails_in_one_line_before_any_aws_call(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    missing = tmp_path / "nowhere.yaml"

    assert cli_main(["--home", str(tmp_path), "deploy", "--template", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"telcopulse: error: no template at {missing}: give --template an existing file\n"
    )


def test_the_glue_script_is_the_installed_glue_job_packages_entry():
    assert Path(glue_job.__file__).resolve().parent / "glue_entry.py" == ENTRY_SCRIPT
    assert "def main(" in ENTRY_SCRIPT.read_text()


def test_pyproject_lists_every_package_and_installs_infra_as_the_tooling_s_data():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    tops = {name for name in listed if "." not in name}
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for top in tops
        for path in (ROOT / top).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages"
    assert setuptools["package-dir"] == {"telcopulse_deploy.infra": "infra"}
    assert setuptools["package-data"]["telcopulse_deploy.infra"] == ["*.yaml"]


def test_the_runtime_never_imports_the_deploy_tooling_but_the_cli_does_lazily():
    for package in ("backend", "glue_job", "dashboard"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(name.startswith("telcopulse_deploy") for name in names):
                    assert path == ROOT / "backend" / "cli.py", path
                    assert node.col_offset > 0, "the CLI imports the tooling inside a function"


def test_the_cli_loads_without_the_deploy_tooling(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "telcopulse_deploy", None)  # as if not installed

    assert cli_main(["--home", str(tmp_path), "destroy"]) == 2
    assert capsys.readouterr().err == (
        "telcopulse: error: this installation has no deploy tooling (telcopulse_deploy): run "
        "deploy and destroy where TelcoPulse is installed from its checkout (pip install -e .)\n"
    )
