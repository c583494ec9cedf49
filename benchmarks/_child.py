"""One measurement, run in a fresh process by benchmarks/sweep.py so that its peak RSS is its own.

    python benchmarks/_child.py MODE SPEC_JSON

MODE is `sweep` (the function, index.handler on a timer event), `invoke` (index.handler on any event, reporting
what it returned: benchmarks/estate.py), `sdk-check` (the official Workspace client: ListDesktops, then
CheckSysprepInfo in sequential batches of 100) or `sdk-show` (the official client: ListDesktops, then
ShowSysprepInfo once per desktop). SPEC_JSON holds the emulator's URL, project, keys and, for `sweep` and
`invoke`, the function's user data. The result is one JSON object written to the path in spec["result"]:
stdout belongs to the function's logs.

Only `sys`, `time` and `pathlib` are imported up front: each mode imports what it measures, so that the peak
RSS taken after the run holds the interpreter, that mode's imports and its work, little else.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

Version = tuple[int, ...]

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB: VmHWM, the high-water mark of this program's own
    memory. Not ru_maxrss: Linux carries the parent's peak into it across vfork and exec (subprocess uses
    vfork), so a child of a large parent would report at least the parent's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # elsewhere: the best there is

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def function_context(spec: dict[str, Any]) -> Any:
    """FunctionGraph's context for spec["user_data"], signing with spec["keys"], with spec["request_id"] (an
    asynchronous invocation's) when given."""
    from devkit.context import Context

    keys = spec["keys"]
    return Context(
        spec["user_data"],
        access_key=keys[0],
        secret_key=keys[1],
        security_token=keys[2],
        timeout_seconds=900,
        request_id=spec.get("request_id"),
    )


def run_sweep(spec: dict[str, Any]) -> dict[str, Any]:
    """index.handler on events/timer.json with FunctionGraph's context, as scripts/invoke runs it."""
    sys.path[:0] = [str(ROOT), str(ROOT / "handler")]
    import json

    import index

    event = json.loads((ROOT / "events" / "timer.json").read_text())
    context = function_context(spec)
    rss_before = peak_rss_mb()
    cpu = time.process_time()
    started = time.perf_counter()
    summary = index.handler(event, context)
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "cpu": time.process_time() - cpu,
        "rss_before": rss_before,
        "rss_peak": peak_rss_mb(),
        "checked": summary["checked"],
        "non_compliant": summary["counts"]["non_compliant"],
        "unchecked": summary["counts"]["unchecked"],
        "published": len(summary["published"]),
        "incomplete": summary["incomplete"],
        "errors": summary["errors"],
    }


BRIEF_LISTS = ("non_compliant", "unchecked", "exempt")  # a summary's lists of desktops: thousands of entries


def run_invoke(spec: dict[str, Any]) -> dict[str, Any]:
    """index.handler on spec["event"] (an object) or spec["event_file"] (a path under the repository), with
    spec["user_data"] and, when given, spec["request_id"] (an asynchronous invocation's), as FunctionGraph would
    invoke it: a cold start, then one call. Reports the handler's return value (`returned`; with spec["brief"], a
    summary's lists of desktops replaced by their lengths) or what it raised (`error`: reported, not raised, so
    that the caller judges it), wall and CPU time of the call, the process's CPU time in all (imports included),
    its peak RSS, and when the call started and ended (time.time(), comparable across processes). The function's
    log lines go to the file spec["log"] when given."""
    sys.path[:0] = [str(ROOT), str(ROOT / "handler")]
    import contextlib
    import json
    import os

    import index

    event = spec["event"] if "event" in spec else json.loads((ROOT / spec["event_file"]).read_text())
    context = function_context(spec)
    returned: Any = None
    error = None
    with open(spec.get("log") or os.devnull, "w") as log, contextlib.redirect_stdout(log):
        rss_before = peak_rss_mb()
        cpu = time.process_time()
        started_at = time.time()
        started = time.perf_counter()
        try:
            returned = index.handler(event, context)
        except Exception as exc:  # the caller judges it
            error = f"{type(exc).__name__}: {exc}"
        wall = time.perf_counter() - started
        ended_at = time.time()
        cpu = time.process_time() - cpu
    if spec.get("brief") and isinstance(returned, dict):
        returned = {k: len(v) if k in BRIEF_LISTS and isinstance(v, list) else v for k, v in returned.items()}
    return {
        "wall": wall,
        "cpu": cpu,
        "cpu_process": time.process_time(),
        "rss_before": rss_before,
        "rss_peak": peak_rss_mb(),
        "started_at": started_at,
        "ended_at": ended_at,
        "returned": returned,
        "error": error,
    }


def _sdk_client(spec: dict[str, Any]) -> Any:
    """The official WorkspaceClient, pointed at the emulator, signing with the emulator's temporary keys."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkworkspace.v2 import WorkspaceClient

    ak, sk, token = spec["keys"]
    credentials = BasicCredentials(ak, sk, spec["project_id"]).with_security_token(token)
    return WorkspaceClient.new_builder().with_credentials(credentials).with_endpoint(spec["url"]).build()


def _sdk_list(client: Any) -> list[Any]:
    """Every desktop, page after page of 1,000, the way the SDK's samples list them."""
    from huaweicloudsdkworkspace.v2 import ListDesktopsRequest

    desktops: list[Any] = []
    while True:
        page = client.list_desktops(ListDesktopsRequest(offset=len(desktops), limit=1000))
        desktops.extend(page.desktops or [])
        if not page.desktops or len(desktops) >= (page.total_count or 0):
            return desktops


def _below(version: str | None, minimum: tuple[int, ...]) -> bool:
    """The same rule as the function's: a missing or unreadable version fails, versions compare numerically."""
    try:
        return version is None or tuple(int(p) for p in version.split(".")) < minimum
    except ValueError:
        return True


def _sdk_baseline(spec: dict[str, Any], find: Callable[[Any, list[str], Version], list[str]]) -> dict[str, Any]:
    """List with the official client, then let `find` check the desktops; timed and measured alike."""
    minimum = tuple(int(p) for p in spec["min_version"].split("."))
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    client = _sdk_client(spec)
    ids = [d.desktop_id for d in _sdk_list(client) if not d.task_status]  # as the function: busy ones wait
    found = find(client, ids, minimum)
    wall = time.perf_counter() - started
    return {"wall": wall, "rss_before": rss_before, "rss_peak": peak_rss_mb(), "checked": len(ids), "found": len(found)}


def run_sdk_check(spec: dict[str, Any]) -> dict[str, Any]:
    """ListDesktops, then CheckSysprepInfo with 100 ids a call, one call after another."""
    from huaweicloudsdkworkspace.v2 import CheckSysprepInfoRequest, CheckSysprepInfoRequestBody

    def find(client: Any, ids: list[str], minimum: Version) -> list[str]:
        found: list[str] = []
        for start in range(0, len(ids), 100):
            batch = ids[start : start + 100]
            answer = client.check_sysprep_info(
                CheckSysprepInfoRequest(body=CheckSysprepInfoRequestBody(desktop_ids=batch))
            )
            infos = {i.desktop_id: i for i in answer.sysprep_infos}
            found += [d for d in batch if d not in infos or _below(infos[d].sysprep_version, minimum)]
        return found

    return _sdk_baseline(spec, find)


def run_sdk_show(spec: dict[str, Any]) -> dict[str, Any]:
    """ListDesktops, then ShowSysprepInfo for each desktop (a 404 is a desktop without Sysprep info)."""
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
    from huaweicloudsdkworkspace.v2 import ShowSysprepInfoRequest

    def find(client: Any, ids: list[str], minimum: Version) -> list[str]:
        found: list[str] = []
        for desktop_id in ids:
            try:
                info = client.show_sysprep_info(ShowSysprepInfoRequest(desktop_id=desktop_id))
            except ClientRequestException as exc:
                if exc.status_code != 404:
                    raise
                found.append(desktop_id)
                continue
            if _below(info.sysprep_version, minimum):
                found.append(desktop_id)
        return found

    return _sdk_baseline(spec, find)


MODES = {"sweep": run_sweep, "invoke": run_invoke, "sdk-check": run_sdk_check, "sdk-show": run_sdk_show}


def main(argv: list[str]) -> int:
    import json

    mode, spec = argv[0], json.loads(argv[1])
    result = MODES[mode](spec)
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
