"""`python -m devkit.emulator`: run the emulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from .core import DEFAULT_PROJECT_ID, DEFAULT_REGION, FAKE_AK, Emulator
from .fleet import Fleet

DEFAULT_BUCKET = "sysprep-state"


def banner(emulator: Emulator) -> str:
    """What someone starting the emulator by hand needs to point the function at it."""
    keys = emulator.keys.get(FAKE_AK)
    counts = emulator.fleet.kind_counts()
    fleet = ", ".join(f"{n:,} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    url = emulator.url
    lines = [
        f"emulator listening on {url}",
        f"  project id   {emulator.project_id}",
        f"  region       {emulator.region}",
        f"  topic URN    {emulator.topic}",
        f"  desktops     {len(emulator.fleet):,} (seed {emulator.fleet.seed}): {fleet or 'none'}",
    ]
    buckets = list(emulator.buckets)  # in the order given: the first is the one to configure
    if emulator.obs is not None:
        lines.append(
            f"  OBS buckets  {', '.join(buckets) or 'none'} (path-style {url}/BUCKET/KEY;"
            " ObsClient(server=URL, path_style=True, signature='obs'))"
        )
    else:
        lines.append("  OBS          not served")
    served = "custom metrics (POST /V1.0/{project_id}/metric-data)" if emulator.ces is not None else "not served"
    lines.append(f"  Cloud Eye    {served}")
    lines.append(f"  account      {emulator.domain_name} (domain id {emulator.domain_id})")
    served_routes = {route.operation for route in emulator.routes}
    iam = "agency keys (POST /v3.0/OS-CREDENTIAL/securitytokens)"
    lines.append(f"  IAM          {iam if 'CreateTemporaryAccessKeyByAgency' in served_routes else 'not served'}")
    fgs = "FunctionGraph async invocations, run in-process (.../invocations-async)"
    lines.append(f"  functions    {fgs if 'AsyncInvokeFunction' in served_routes else 'FunctionGraph not served'}")
    if keys is not None:
        lines += [
            f"  access key   {FAKE_AK}",
            f"  secret key   {keys[0]}",
            f"  token        {keys[1] or '(none)'}",
        ]
    lines += [
        "configure the function with:",
        f"  REGION={emulator.region} PROJECT_ID={emulator.project_id} SMN_TOPIC_URN={emulator.topic}",
    ]
    storage = [f"ENDPOINTS={url}"]
    if buckets:
        storage.append(f"STATE_BUCKET={buckets[0]}")
    if emulator.ces is not None:
        storage.append("METRICS=true")
    lines.append("  " + " ".join(storage))
    if keys is not None:
        lines.append(
            f"  HUAWEICLOUD_SDK_AK={FAKE_AK} HUAWEICLOUD_SDK_SK={keys[0]}"
            + (f" HUAWEICLOUD_SDK_SECURITY_TOKEN={keys[1]}" if keys[1] else "")
        )
    lines.append("Ctrl-C stops it.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.emulator",
        description="Run the local cloud emulator (Workspace, SMN, OBS, Cloud Eye; IAM and FunctionGraph from Python)"
        " in the foreground until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (0 picks a free one; default 8080)")
    parser.add_argument("--desktops", type=int, default=50, help="size of the seeded fleet (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fleet (default 0)")
    parser.add_argument("--project-id", default=DEFAULT_PROJECT_ID)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument(
        "--bucket",
        action="append",
        dest="buckets",
        metavar="NAME",
        help=f"an OBS bucket that exists (repeatable; default {DEFAULT_BUCKET})",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every call")
    parser.add_argument("--quiet", action="store_true", help="do not print a line per call")
    args = parser.parse_args(argv)
    emulator = Emulator(
        project_id=args.project_id,
        region=args.region,
        fleet=Fleet.seeded(args.desktops, seed=args.seed),
        buckets=args.buckets or [DEFAULT_BUCKET],
        ces=True,
        host=args.host,
        port=args.port,
        latency=args.latency,
        verbose=not args.quiet,
    )
    with emulator:
        try:
            print(banner(emulator), flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", file=sys.stderr)
    return 0
