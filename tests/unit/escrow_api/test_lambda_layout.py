"""The handler works as Lambda loads it: the function folder as the task root, no package.

A fresh interpreter gets a copy of ``functions/escrow_api/`` as its working directory
and the layer on its path (the repository itself is not importable), imports ``app``
and answers an HTTP API event, as the deployed function would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_app_lambda_handler_from_the_task_root(tmp_path: Path) -> None:
    task = tmp_path / "task"
    shutil.copytree(
        ROOT / "functions" / "escrow_api", task, ignore=shutil.ignore_patterns("__pycache__")
    )
    event = (ROOT / "events" / "escrow_api" / "get_escrow_no_claims.json").read_text()
    probe = (
        "import importlib.util, json, sys\n"
        f"sys.path[:0] = ['', {str(ROOT / 'layers' / 'jobs_core')!r}]\n"
        "assert importlib.util.find_spec('functions') is None, 'the repo is importable'\n"
        "import app\n"
        "class Context:\n"
        "    function_name = 'escrow-api'; memory_limit_in_mb = 512\n"
        "    invoked_function_arn = 'arn:aws:lambda:eu-west-1:1:function:escrow-api'\n"
        "    aws_request_id = 'probe'\n"
        "result = app.lambda_handler(json.loads(sys.stdin.read()), Context())\n"
        "print(json.dumps({'status': result['statusCode'], 'body': json.loads(result['body'])}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        cwd=task,
        input=event,
        env={
            "PATH": "/usr/bin:/bin",
            "ESCROW_TABLE_NAME": "escrow-table",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == 401
    assert answer["body"]["error"]["code"] == "unauthorized"
