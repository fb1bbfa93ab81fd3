"""``python -m stacks.nag_summary cdk.out``: where the templates went and what cdk-nag concluded.

Run by ``make synth`` after a successful synth (a failing check has already stopped it, with CDK's
own report). Lists every acknowledged finding with its construct, so reviews see them all at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ACK_KEY = "aws:cdk:acknowledged-rules"


def summarize(outdir: Path) -> list[str]:
    lines = [f"templates in {outdir.resolve()}:"]
    lines += [f"  {path.name}" for path in sorted(outdir.glob("*.template.json"))]
    report_path = outdir / "validation-report.json"
    violations = 0
    if report_path.exists():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        violations = sum(len(plugin.get("violations", [])) for plugin in report.get("pluginReports", []))
    acknowledged: list[tuple[str, str, str]] = []
    for metadata_file in sorted(outdir.glob("*.metadata.json")):
        for path, entries in json.loads(metadata_file.read_text(encoding="utf-8")).items():
            for entry in entries:
                if entry.get("type") == ACK_KEY:
                    for rule, reason in entry["data"].items():
                        acknowledged.append((path, rule.removeprefix("Annotation::"), reason))
    lines.append(
        f"cdk-nag (AwsSolutions, Serverless): {violations} unacknowledged finding(s), {len(acknowledged)} acknowledged:"
    )
    lines += [f"  {rule} on {path}: {reason}" for path, rule, reason in acknowledged]
    return lines


def main(argv: list[str]) -> int:
    outdir = Path(argv[1] if len(argv) > 1 else "cdk.out")
    print("\n".join(summarize(outdir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
