"""cfn-lint, offline, on the SAM template and on what the SAM transform makes of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, lint_file

from tests.template.cfn import TEMPLATE

REGIONS = ["eu-west-1", "us-east-1"]


def lint(path: Path) -> tuple[list[str], list[str]]:
    """(errors and warnings, informational findings) of cfn-lint on ``path``."""
    matches = lint_file(path, ManualArgs(regions=REGIONS, include_checks=["I"]))
    blocking = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches
                if m.rule.id[0] in "EW"]  # fmt: skip
    info = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches
            if m.rule.id[0] not in "EW"]  # fmt: skip
    return blocking, info


def test_the_sam_template_has_no_lint_errors_or_warnings() -> None:
    blocking, info = lint(TEMPLATE)
    assert blocking == []
    assert info == []  # informational findings too were fixed where reasonable: all of them


def test_the_transformed_template_has_no_lint_errors_or_warnings(
    transformed: dict[str, Any], tmp_path: Path
) -> None:
    """cfn-lint 1.x checks a SAM template against SAM's schema without transforming it;
    this runs the real transform and lints the CloudFormation it produces."""
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(transformed))
    blocking, _ = lint(path)
    assert blocking == []
