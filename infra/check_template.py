"""Check a SAM template the way CloudFormation will see it, offline: run the SAM transform, then cfn-lint
the generated template.

    .venv-sam/bin/python infra/check_template.py template.yaml [--out transformed.json]

`sam validate --lint` lints the SAM source, so bad values on resources SAM generates (a Function URL's
InvokeMode, a runtime name, a GetAtt on the generated `<Function>Url`) slip through; linting the
transform's output catches them. Needs aws-sam-translator and cfn-lint (both come with aws-sam-cli, which
`./dev test` installs into .venv-sam). No AWS credentials or network: CodeUri is replaced by a dummy S3
location and managed-policy lookups answer nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


class _NoManagedPolicies:
    def load(self, *_args: Any, **_kwargs: Any) -> dict[str, str]:
        return {}


def transform_template(path: Path) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    doc = yaml_parse(path.read_text(encoding="utf-8"))
    for resource in doc.get("Resources", {}).values():
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            props = resource.setdefault("Properties", {})
            key = "CodeUri" if resource["Type"] == "AWS::Serverless::Function" else "ContentUri"
            props[key] = "s3://omniroute-offline-check/artifact.zip"
    result: dict[str, Any] = transform(doc, {}, _NoManagedPolicies())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SAM transform + cfn-lint, offline")
    parser.add_argument("template", type=Path)
    parser.add_argument("--out", type=Path, help="where to keep the transformed template (JSON)")
    args = parser.parse_args(argv)
    try:
        transformed = transform_template(args.template)
    except Exception as exc:  # the translator reports template errors as exceptions
        print(f"SAM transform failed: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp()) / "transformed.json"
    out.write_text(json.dumps(transformed, indent=1), encoding="utf-8")
    cfn_lint = Path(sys.executable).with_name("cfn-lint")  # installed beside this interpreter
    lint = subprocess.run([str(cfn_lint), str(out)], check=False)
    if lint.returncode == 0:
        print(f"SAM transform + cfn-lint: clean ({out})")
    return lint.returncode


if __name__ == "__main__":
    sys.exit(main())
