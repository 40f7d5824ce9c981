"""`passpro docs [--check]`: the OpenAPI of each service and the AsyncAPI of the log, generated from the code.

The documents are committed under shared/contracts/api/; `--check` (run by the
tests, so by CI) fails when the code and the committed documents differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from services.cli.common import SERVICES, app_factory, service_settings

API_DIR = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "api"


def documents() -> dict[str, str]:
    """File name -> content of every generated document."""
    from shared.runtime.asyncapi import asyncapi_document

    docs = {}
    for name in SERVICES:
        create_app, _ = app_factory(name)
        settings = service_settings(name).model_copy(update={"jwt_secret": "x" * 40})
        docs[f"openapi-{name}.json"] = create_app(settings).openapi()
    docs["asyncapi.json"] = asyncapi_document()
    # Sorted keys: FastStream keeps its publishers in a set, so its order changes from run to run.
    return {file: json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n" for file, doc in docs.items()}


def stale_documents(directory: Path = API_DIR) -> list[str]:
    return [
        file
        for file, content in documents().items()
        if not (directory / file).exists() or (directory / file).read_text(encoding="utf-8") != content
    ]


def docs(args: argparse.Namespace) -> int:
    if args.check:
        stale = stale_documents()
        for file in stale:
            print(f"{API_DIR / file} is not in step with the code: run `passpro docs`", file=sys.stderr)
        return 1 if stale else 0
    API_DIR.mkdir(parents=True, exist_ok=True)
    for file, content in documents().items():
        (API_DIR / file).write_text(content, encoding="utf-8")
        print(f"écrit : {API_DIR / file}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("docs", help="generate the OpenAPI and AsyncAPI documents (--check: verify them)")
    p.add_argument("--check", action="store_true", help="exit 1 if the committed documents differ from the code")
    p.set_defaults(func=docs)
