"""One name rule: deploy.sh refuses exactly the model names and versions the server refuses."""

from __future__ import annotations

import re

import pytest

from serving.settings import NAME_PATTERN, ConfigError, Settings
from tests.deploy.deploy_script import DEPLOY, PROJECT, run_deploy

CASES = [
    ("model", True),
    ("digits-v2.1_b", True),
    ("7", True),
    ("A", True),
    ("", False),  # deploy.sh: an empty option; the server: the default
    ("my/model", False),
    ("a:b", False),
    ("a b", False),
    (" model", False),
    ("-model", False),
    (".hidden", False),
    ("mödel", False),
    ("a%2Fb", False),
]


def test_deploy_sh_states_the_servers_pattern():
    assert f"=~ ^{NAME_PATTERN}$ ]]" in DEPLOY.read_text()


@pytest.mark.parametrize(("name", "valid"), CASES)
@pytest.mark.parametrize(
    ("option", "variable"), [("--model-name", "MODEL_NAME"), ("--model-version", "MODEL_VERSION")]
)
def test_deploy_sh_and_the_server_agree(option, variable, name, valid):
    assert bool(re.fullmatch(NAME_PATTERN, name)) is valid
    result = run_deploy("--dry-run", "--project", PROJECT, f"{option}={name}")
    what = "model name" if variable == "MODEL_NAME" else "model version"
    if valid:
        assert result.returncode == 0, result.stderr
        assert getattr(Settings.from_env({variable: name}), variable.lower()) == name
    else:
        assert result.returncode == 2, result.stdout
        if name:  # an empty value is refused as a missing option value
            assert result.stderr == (
                f"deploy.sh: {what} must be letters, digits, '.', '_' or '-' (it is a URL path "
                f"segment), got '{name}'\n"
            )
            with pytest.raises(ConfigError, match=f"{variable}="):
                Settings.from_env({variable: name})
