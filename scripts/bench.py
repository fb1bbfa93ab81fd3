"""``make bench``: how fast ``codewatch hunt`` reads CloudTrail archives, against ``jq`` and the ``zcat`` floor.

On one generated corpus (``scripts/gen_corpus.py``: at least a million records in gzip CloudTrail log
files, laid out as in S3, under ``.bench/corpus``, reused while its parameters hold), it times, median
of ``--runs`` runs each:

- ``codewatch hunt --format json`` over the corpus folder;
- ``xargs zcat | jq -c FILTER``: the same filter (the detection rule with the default principal types)
  and projection (the key fields, time and function) as a user would write it;
- ``xargs zcat > /dev/null``: decompressing alone, the floor for any reader of these files.

It prints records per second for each, hunt's ratios to the others, the peak memory of hunt (the sum
of its processes' resident sets, sampled, and the largest single process), and checks that hunt's
aggregates equal the aggregation of jq's output, so the speed is not bought with wrong answers.
Wall-clock figures depend on what else the machine runs; CPU seconds are printed beside them.
"""

from __future__ import annotations

# ruff: noqa: S603, S607 - the commands run are fixed here (zcat, jq, apt-get, our own console script)
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from gen_corpus import DEFAULT_RECORDS, DEFAULT_SEED, ensure_corpus  # noqa: E402 - scripts/ is not a package

KEY_FIELDS = ("src_ip", "user_arn", "user_agent", "user_type", "eventName", "aws_account_id")
# The detection rule (codewatch.match.rule with the default principal types) and hunt's projection, in jq.
JQ_FILTER = """
.Records[]
| select(.eventSource == "lambda.amazonaws.com"
         and (.eventName | type == "string" and startswith("UpdateFunctionCode"))
         and .errorCode == null
         and (.userIdentity.type | type == "string" and . != "AWSService"))
| {src_ip: .sourceIPAddress, user_arn: .userIdentity.arn, user_agent: .userAgent,
   user_type: .userIdentity.type, eventName, aws_account_id: .recipientAccountId,
   eventTime, functionName: .requestParameters.functionName}
"""


@dataclass
class Run:
    wall: float
    cpu: float  # user + system seconds of the command and everything it started
    peak_sum_kb: int = 0  # sampled sum of resident sets over the process tree
    peak_single_kb: int = 0  # the largest single process (getrusage)


def ensure_jq() -> str | None:
    """The jq binary; installed with apt-get when missing and we are root."""
    found = shutil.which("jq")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: jq is missing; installing it with apt-get", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-qq", "jq"], check=False, **quiet)
        return shutil.which("jq")
    print("bench: jq is missing and we are not root: install it (apt-get install jq) to compare", flush=True)
    return None


def _tree_rss_kb(pid: int) -> int:
    """Resident set of ``pid`` and all its descendants, in KiB (0 for processes already gone)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            with open(f"/proc/{current}/task/{current}/children") as children:
                stack.extend(int(child) for child in children.read().split())
        except (OSError, ValueError):
            continue
    return total


def timed(command: list[str], stdout: Any, sample_memory: bool = False) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=stdout)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.01):
            peak = max(peak, _tree_rss_kb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    if sample_memory:
        sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    process.returncode = os.waitstatus_to_exitcode(status)
    if sample_memory:
        sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command[:3])}... failed with status {process.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall=wall, cpu=cpu, peak_sum_kb=peak, peak_single_kb=usage.ru_maxrss)


def median_run(label: str, runs: int, command: list[str], stdout_path: Path | None, sample: bool = False) -> Run:
    results = []
    for number in range(runs):
        if stdout_path is None:
            results.append(timed(command, subprocess.DEVNULL, sample))
        else:
            with stdout_path.open("wb") as out:
                results.append(timed(command, out, sample))
        print(f"  {label} run {number + 1}: {results[-1].wall:.2f} s", flush=True)
    middle = sorted(results, key=lambda run: run.wall)[len(results) // 2]
    middle.peak_sum_kb = max(run.peak_sum_kb for run in results)
    middle.peak_single_kb = max(run.peak_single_kb for run in results)
    return middle


def hunt_aggregates(path: Path) -> dict[tuple[Any, ...], tuple[int, str, str, tuple[str, ...]]]:
    out = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        key = tuple(row[name] for name in KEY_FIELDS)
        out[key] = (row["count"], row["firstTime"], row["lastTime"], tuple(row["function_updated"]))
    return out


def jq_aggregates(path: Path) -> dict[tuple[Any, ...], tuple[int, str, str, tuple[str, ...]]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    first: dict[tuple[Any, ...], str] = {}
    last: dict[tuple[Any, ...], str] = {}
    functions: dict[tuple[Any, ...], set[str]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        key = tuple(row[name] for name in KEY_FIELDS)
        counts[key] += 1
        # The corpus writes every time as YYYY-MM-DDTHH:MM:SSZ, so text order is time order.
        first[key] = min(first.get(key, row["eventTime"]), row["eventTime"])
        last[key] = max(last.get(key, row["eventTime"]), row["eventTime"])
        if row["functionName"] is not None:
            functions.setdefault(key, set()).add(row["functionName"])
    return {key: (counts[key], first[key], last[key], tuple(sorted(functions.get(key, ())))) for key in counts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark codewatch hunt against jq and zcat.")
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="corpus size (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool; the median is reported")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench", help="corpus and outputs (default .bench/)")
    args = parser.parse_args(argv)

    jq = ensure_jq()
    corpus = args.work / "corpus"
    started = time.perf_counter()
    stamp, reused = ensure_corpus(corpus, args.records, DEFAULT_SEED)
    files = sorted(str(path) for path in corpus.rglob("*.json.gz"))
    size = sum(os.path.getsize(path) for path in files)
    print(
        f"corpus: {stamp['records']:,} records in {len(files):,} gzip files ({size / 1e6:.0f} MB), "
        f"{'reused' if reused else f'generated in {time.perf_counter() - started:.0f} s'}: {corpus}",
        flush=True,
    )
    file_list = args.work / "files.txt"
    file_list.write_text("\0".join(files) + "\0")
    for path in files:  # warm the page cache so the first timed run does not pay for the disk alone
        with open(path, "rb") as stream:
            stream.read()

    list_arg = str(file_list)
    codewatch = Path(sys.executable).with_name("codewatch")
    hunt_cmd = [str(codewatch), "hunt", "--format", "json", str(corpus)]
    zcat_cmd = ["bash", "-c", 'xargs -0 zcat < "$1" > /dev/null', "bench", list_arg]
    jq_cmd = [
        "bash",
        "-c",
        'set -o pipefail; xargs -0 zcat < "$1" | "$2" -c "$3"',
        "bench",
        list_arg,
        jq or "",
        JQ_FILTER,
    ]

    hunt_out, jq_out = args.work / "hunt.jsonl", args.work / "jq.jsonl"
    results: dict[str, Run] = {}
    results["hunt"] = median_run("hunt", args.runs, hunt_cmd, hunt_out, sample=True)
    results["zcat"] = median_run("zcat", args.runs, zcat_cmd, None)
    if jq:
        results["jq"] = median_run("jq", args.runs, jq_cmd, jq_out)

    records = stamp["records"]
    print(f"\nthroughput on {records:,} records (median of {args.runs}; CPU = user + system seconds):")
    for name in ("hunt", "jq", "zcat"):
        if name in results:
            run = results[name]
            print(f"  {name:5s} {records / run.wall:>12,.0f} records/s   {run.wall:6.2f} s wall  {run.cpu:6.2f} s CPU")
    hunt_rate = records / results["hunt"].wall
    zcat_rate = records / results["zcat"].wall
    print(f"  hunt / zcat floor: {hunt_rate / zcat_rate:.2f} (goal >= 0.5)")
    if "jq" in results:
        print(f"  hunt / jq:         {hunt_rate / (records / results['jq'].wall):.1f}x (goal >= 5x)")
    peak = results["hunt"]
    print(
        f"  hunt peak memory: {peak.peak_sum_kb / 1024:.0f} MB summed over its processes (sampled), "
        f"{peak.peak_single_kb / 1024:.0f} MB largest single process (goal < 300 MB)"
    )

    hunt_rows = hunt_aggregates(hunt_out)
    events = sum(value[0] for value in hunt_rows.values())
    if jq:
        jq_rows = jq_aggregates(jq_out)
        if jq_rows != hunt_rows:
            differ = sorted(set(jq_rows) ^ set(hunt_rows) | {k for k in jq_rows if jq_rows.get(k) != hunt_rows.get(k)})
            print(f"sanity: FAILED: hunt and jq disagree on {len(differ)} key(s), e.g. {differ[:1]}")
            return 1
        print(f"sanity: hunt's {len(hunt_rows)} aggregates ({events:,} events) equal jq's output, aggregated")
    else:
        print(f"sanity: skipped (no jq); hunt found {events:,} events in {len(hunt_rows)} aggregates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
