"""``python -m app.api [FILE]``: write the OpenAPI document (to stdout without FILE).

The same JSON ``GET /openapi.json`` serves; ``make js-types`` feeds it to
openapi-typescript for the browser client's types (clients/js/src/schema.ts).
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.api.openapi import build_spec, render


def main(argv: list[str]) -> None:
    """Write the document to ``argv[0]``, or to stdout."""
    text = render(build_spec())
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
