"""How long a persona edit takes to reach fans: edit the file, ask until the answer changes.

The daemon promises that an edited persona is live "within about a second" (README). That is a
speed goal, so it is measured here rather than asserted in a unit test (a loaded CI machine
would make such a test flaky). Starts a real `brandbot serve` on a copy of the test persona,
edits its hours ``--edits`` times and reports the time from the write to the first answer
that carries the new hours.

    python bench/reload_latency.py --edits 10
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "personas" / "tiny.yaml"


def ask(port: int, text: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/api/chat", body=json.dumps({"text": text}).encode(),
                     headers={"Content-Type": "application/json"})
        body = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return " ".join(r["text"] for r in body.get("replies", []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="reload-bench-"))
    (work / "personas").mkdir()
    persona = work / "personas" / "tiny.yaml"
    shutil.copy(TINY, persona)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", "0", "--db", str(work / "b.db"),
         "--persona", str(persona)],
        cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        port = None
        for line in proc.stdout:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if found:
                port = int(found.group(1))
            if port and "reload" in line:
                break
        assert port, "the daemon did not say its address"
        latencies = []
        current = "每天9点到21点"
        for n in range(args.edits):
            new = f"每天{8 + n % 2}点到{22 + n % 2}点"
            if new == current:
                new = f"每天{7}点到{20 + n}点"
            persona.write_text(persona.read_text(encoding="utf-8").replace(current, new),
                               encoding="utf-8")
            written = time.monotonic()
            wanted = new.removeprefix("每天")
            while wanted not in ask(port, "几点开门"):
                if time.monotonic() - written > 30:
                    raise SystemExit(f"edit {n}: not live after 30 s")
                time.sleep(0.01)
            latencies.append(time.monotonic() - written)
            current = new
            time.sleep(0.3)  # let the watcher settle before the next edit
        print(f"reload latency over {len(latencies)} edits: "
              f"median {statistics.median(latencies) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
