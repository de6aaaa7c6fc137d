"""Markdown tables of one chaos run for docs/reliability.md.

``python -m tests.chaos.render var/chaos/long-<timestamp>.json``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.chaos.checks import MUST_BE_ZERO

SHORT_NAMES = ("flash sale", "kill -9", "Redis", "PostgreSQL")


def render(run: dict[str, Any]) -> str:
    scenarios = run["scenarios"]
    names = [s["scenario"] for s in scenarios]
    keys: list[str] = []
    for s in scenarios:
        keys += [k for k in s["figures"] if k not in keys and k != "faults"]
    lines = [
        f"Run: `{run['scale']}`, finished {run['finished']} UTC, {run['machine']}; "
        f"dyno restarts {run['restarts']}.",
        "",
        "| figure | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for key in keys:
        cells = []
        for s in scenarios:
            value = s["figures"].get(key, "")
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            cells.append(str(value).replace("|", "/"))
        mark = " **(= 0)**" if key in MUST_BE_ZERO else ""
        lines.append(f"| {key.strip()}{mark} | " + " | ".join(cells) + " |")
    lines += ["", "Faults injected:", ""]
    for s in scenarios:
        faults = s["figures"].get("faults")
        text = "; ".join(faults) if isinstance(faults, list) else faults
        lines.append(f"- {s['scenario']}: {text}")
    return "\n".join(lines)


def main() -> None:
    for path in sys.argv[1:]:
        print(render(json.loads(Path(path).read_text())))


if __name__ == "__main__":
    main()
