"""``seca serve`` under load: concurrent clients predicting, alone and while a learn job grows the model.

A model (the offline seca-shapes CLIP by default) learns a first task of 10 classes; ``seca serve`` then runs
in its own process and ``--clients`` threads each send ``--requests`` predict requests of ``--images`` images,
back to back. The same load runs twice: on the model alone, then while a job learns 10 new classes (started
just after the clients). Each phase prints requests per second, latency percentiles, failures, and for the
second phase, split into the requests that started while the job trained and those after the grown model
was swapped in, how long the job took and when the first answer named a class of the new task (each
request asks for every class's score, so an answer names the new classes as soon as the grown model serves
it).

    python benchmarks/serve_load.py                          # 8 clients x 200 requests, seca-shapes
    python benchmarks/serve_load.py --backbone seca-test     # the tiny random test CLIP: a quick look
    python benchmarks/serve_load.py --json serve.json        # also write the table as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np


def write_classes(root: Path, labels: range, per_class: int, split: str) -> Path:
    """Images of shapes-world classes as ``root/<class>/<i>.png``."""
    from seca.data.shapes import ShapesWorld

    world = ShapesWorld(seed=0)
    for label in labels:
        folder = root / world.class_names[label].replace(" ", "_")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            world.image(label, i, "renditions", split).save(folder / f"{i}.png")
    return root


def seca(*argv: str) -> None:
    subprocess.run([sys.executable, "-m", "seca", *argv], check=True, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "seca", "serve", str(model), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"seca serve stopped: {server.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit("seca serve did not answer within 300 s")


def load(url: str, files: list[Path], clients: int, requests: int, new_classes: set[str]) -> dict:
    """Every client sends ``requests`` predict requests, back to back: each request's start (wall clock), latency,
    whether it failed, and whether its answer names a class of ``new_classes``."""
    payload = [("images", (f.name, f.read_bytes(), "image/png")) for f in files]
    done: list[tuple[float, float, bool, bool]] = []
    guard = threading.Lock()
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            for _ in range(requests):
                start, t0 = time.time(), time.perf_counter()
                try:
                    answer = http.post(f"{url}/predict", files=payload, data={"top_k": "1000"})  # every class
                    ok = answer.status_code == 200
                    labels = {t["label"] for p in answer.json()["predictions"] for t in p["top_k"]} if ok else set()
                except (httpx.HTTPError, ValueError) as e:
                    ok, labels, answer = False, set(), e
                latency = time.perf_counter() - t0
                with guard:
                    done.append((start, latency, ok, bool(labels & new_classes)))
                    if not ok:
                        failures.append(str(getattr(answer, "text", answer))[:200])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"began": began, "ended": time.time(), "requests": done, "failure_examples": failures[:3]}


def stats(requests: list[tuple[float, float, bool, bool]], seconds: float) -> dict:
    ms = np.array([latency for _, latency, _, _ in requests]) * 1000
    return {
        "requests": len(requests),
        "seconds": seconds,
        "requests_per_s": len(requests) / seconds,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "failures": sum(not ok for _, _, ok, _ in requests),
    }


def learn_job(url: str, folder: Path, epochs: int) -> str:
    pairs = [(d.name.replace("_", " "), f) for d in sorted(folder.iterdir()) for f in sorted(d.iterdir())]
    answer = httpx.post(
        f"{url}/learn",
        files=[("images", (f.name, f.read_bytes(), "image/png")) for _, f in pairs],
        data={"labels": [label for label, _ in pairs], "epochs": str(epochs)},
        timeout=120,
    )
    answer.raise_for_status()
    return answer.json()["job"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="seca-shapes", help="seca-shapes (default) or seca-test")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="predict requests per client")
    parser.add_argument("--images", type=int, default=1, help="images per predict request")
    parser.add_argument("--learn-per-class", type=int, default=16, help="training images per new class")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the learn job")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="seca-serve-load-") as tmp:
        root = Path(tmp)
        model = root / "model.safetensors"
        seca("new", str(model), "--backbone", args.backbone)
        seca("learn", str(model), "--data", str(write_classes(root / "first", range(10), 16, "train")))
        new = write_classes(root / "new", range(10, 20), args.learn_per_class, "train")
        new_classes = {d.name.replace("_", " ") for d in new.iterdir()}
        test = write_classes(root / "test", range(10), 1, "test")
        files = sorted(test.glob("*/*.png"))[: args.images]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(model, port)
        try:
            load(url, files, 2, 5, new_classes)  # warm up
            alone = load(url, files, args.clients, args.requests, new_classes)
            job_id = learn_job(url, new, args.epochs)
            learning = load(url, files, args.clients, args.requests, new_classes)
            while (job := httpx.get(f"{url}/jobs/{job_id}").json())["state"] not in ("done", "failed", "cancelled"):
                time.sleep(0.5)
            classes_after = httpx.get(f"{url}/health").json()["classes"]
        finally:
            server.terminate()
            server.wait(60)

    # the second phase in two parts: requests that started while the job trained, and those after the swap
    started, finished = job["started"], job["finished"]
    during = [r for r in learning["requests"] if started <= r[0] < finished]
    after_swap = [r for r in learning["requests"] if r[0] >= finished]
    grew = [r[0] + r[1] for r in learning["requests"] if r[3]]
    table = {
        "alone": stats(alone["requests"], alone["ended"] - alone["began"]),
        "while learning": stats(during, min(finished, learning["ended"]) - max(started, learning["began"])),
    }
    if after_swap:
        table["after the swap"] = stats(after_swap, learning["ended"] - finished)
    print(
        f"seca serve on {args.backbone}, {args.clients} clients x {args.requests} predict requests of "
        f"{args.images} image(s), alone and while a learn job runs; {os.cpu_count()} CPU cores"
    )
    print(f"{'phase':<16}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'failures':>9}")
    for name, r in table.items():
        print(
            f"{name:<16}{r['requests']:>9}{r['requests_per_s']:>8.1f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['failures']:>9}"
        )
    first = (
        f"the first answer naming a new class came {min(grew) - finished:.2f} s after the job finished"
        if grew
        else "no answer named a new class before the load ended"
    )
    print(
        f"learn job: {job['state']}, {job['images']} images, {job['epochs']} epochs ({job['steps']} steps) in "
        f"{finished - started:.1f} s while serving; the model grew from 10 to {classes_after} classes; {first}"
    )
    failed = sum(not r[2] for phase in (alone, learning) for r in phase["requests"])
    print(f"failed requests in all: {failed}")
    for example in alone["failure_examples"] + learning["failure_examples"]:
        print(f"failure: {example}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "backbone": args.backbone,
                    "clients": args.clients,
                    "requests": args.requests,
                    "phases": table,
                    "job": {k: job[k] for k in ("state", "images", "epochs", "steps", "started", "finished")},
                    "failed": failed,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
