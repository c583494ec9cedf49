"""Workspace: ListDesktops, ListDesktopsDetail, CheckSysprepInfo, ShowSysprepInfo and ShowJob, over each project's
fleet.

Every route works in every project the emulator knows (the default one and those added with Emulator.add_project):
the project id in the path picks the fleet, and jobs belong to the project they were added to. Shapes and limits
follow Huawei's API Explorer definitions and the huaweicloudsdkworkspace models (a conformance test deserialises every
answer into the official response model). Error codes WKS.* are the emulator's own.

Both listings take `tag` ("key1=value1,key2=value2": the SDK's ListDesktopsRequest and ListDesktopsDetail's
definition, at most 255 characters there). How Workspace matches it is undocumented; the emulator lists the desktops
carrying every pair given, a `key` without `=` matching that key with any value.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .fleet import CREATING, REBUILDING, Desktop, Fleet, Sysprep
from .http import Answer, Request, json_answer

if TYPE_CHECKING:
    from .core import Emulator, Route

LIST_MAX = 1000  # ListDesktops' largest page
DETAIL_MAX = 1000  # ListDesktopsDetail's `limit` maximum (its definition)
DETAIL_IDS_MAX = 100  # ListDesktopsDetail's desktop_id: at most 100
SYSPREP_MAX = 100  # CheckSysprepInfo's ids per call
JOB_STATES = ("WAITING", "RUNNING", "SUCCESS", "FAILED")  # ShowJob's status values
TAG_FILTER_MAX = 255  # ListDesktopsDetail's `tag` (its definition)


def _stamp(offset: int = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + offset))


def job_states(
    job_id: str,
    desktops: Sequence[Desktop | str],
    *,
    running: int = 1,
    final: str = "SUCCESS",
    job_type: str = "CREATE_DESKTOP",  # the emulator's own label: the function never reads job_type
) -> list[dict[str, Any]]:
    """ShowJob answers for a job over these desktops: WAITING (no desktop ids yet), `running` polls RUNNING, then
    `final` (SUCCESS or FAILED) for good."""
    if final not in ("SUCCESS", "FAILED"):
        raise ValueError(f"a job ends SUCCESS or FAILED, not {final!r}")
    begin = _stamp()

    def state(status: str) -> dict[str, Any]:
        subs = []
        for n, desktop in enumerate(desktops):
            desktop_id, name, user = (
                (desktop.desktop_id, desktop.computer_name, desktop.user_name)
                if isinstance(desktop, Desktop)
                else (desktop, None, None)
            )
            entities: dict[str, Any] = {"product_id": "workspace.x86.ultimate.large2"}
            if status != "WAITING":  # a desktop has an id once Workspace starts making it
                entities.update(desktop_id=desktop_id, desktop_name=name, user_name=user, ip_address="192.0.2.10")
            sub: dict[str, Any] = {
                "id": f"{job_id}-{n}",
                "job_id": job_id,
                "job_type": job_type,
                "status": status,
                "entities": {k: v for k, v in entities.items() if v is not None},
                "begin_time": begin,
            }
            if status in ("SUCCESS", "FAILED"):
                sub["end_time"] = _stamp()
            if status == "FAILED":
                sub.update(error_code="WKS.0999", fail_reason="emulated failure")
            subs.append(sub)
        answer: dict[str, Any] = {
            "id": job_id,
            "job_type": job_type,
            "begin_time": begin,
            "status": status,
            "sub_jobs_total": len(subs),
            "sub_jobs": subs,
        }
        if status in ("SUCCESS", "FAILED"):
            answer["end_time"] = _stamp()
        if status == "FAILED":
            answer.update(job_error_code="WKS.0999", fail_reason="emulated failure")
        return answer

    return [state("WAITING"), *(state("RUNNING") for _ in range(running)), state(final)]


class Workspace:
    bad_request_code = "WKS.0001"
    forbidden_code = "WKS.0403"
    accounts = "any"  # projects of any account, each to its own account's keys

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        # (project id, job id) -> the states ShowJob answers next; what a job's final state does to the fleet
        self._jobs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._on_done: dict[tuple[str, str], Callable[[str], None]] = {}

    def fleet(self, project_id: str | None = None) -> Fleet:
        """The fleet of a project (None: the default project)."""
        project = self.emulator.project(project_id or self.emulator.project_id)
        if project is None:
            raise KeyError(f"no project {project_id}")
        return project.fleet

    def routes(self) -> list[Route]:
        from .core import Route

        def route(method: str, path: str, kind: str, operation: str, handle: Callable[[Request], Answer]) -> Route:
            return Route(method, re.compile(f"^/v2/([^/]+){path}/?$"), kind, operation, handle, self)

        return [
            route("GET", "/desktops", "list", "ListDesktops", self._list),
            route("GET", "/desktops/detail", "detail", "ListDesktopsDetail", self._detail),
            route("POST", "/sysprep", "sysprep", "CheckSysprepInfo", self._sysprep),
            # ShowSysprepInfo, one desktop a call: what the official SDK baseline in benchmarks/ calls.
            route("GET", "/desktops/([^/]+)/sysprep", "show", "ShowSysprepInfo", self._show),
            route("GET", "/workspace-jobs/([^/]+)", "job", "ShowJob", self._job),
        ]

    def error(self, status: int, code: str, message: str, request_id: str, close: bool = False) -> Answer:
        """Workspace's error body: {error_code, error_msg}."""
        return json_answer(status, {"error_code": code, "error_msg": message}, close=close)

    # Scripting ------------------------------------------------------------------------------------

    def add_job(
        self,
        job_id: str,
        states: Sequence[Mapping[str, Any]],
        on_done: Callable[[str], None] | None = None,
        *,
        project_id: str | None = None,
    ) -> None:
        if not states:
            raise ValueError("a job needs at least one state")
        key = (project_id or self.emulator.project_id, job_id)
        with self.emulator._lock:
            self._jobs[key] = [dict(s) for s in states]
            if on_done is not None:
                self._on_done[key] = on_done

    def add_creation_job(
        self,
        job_id: str,
        desktop_ids: Sequence[str],
        *,
        running: int = 1,
        final: str = "SUCCESS",
        project_id: str | None = None,
    ) -> list[dict[str, Any]]:
        fleet = self.fleet(project_id)
        made = {d: fleet.get(d) for d in desktop_ids if d in fleet}
        states = job_states(job_id, [made.get(d) or d for d in desktop_ids], running=running, final=final)
        for desktop_id in made:
            fleet.update(desktop_id, status=None, task_status=CREATING, sysprep=None)

        def done(status: str) -> None:
            for desktop_id, desktop in made.items():
                if status == "SUCCESS":
                    fleet.update(desktop_id, status=desktop.status, task_status=None, sysprep=desktop.sysprep)
                else:
                    fleet.update(desktop_id, status="ERROR", task_status=None, sysprep=None)

        self.add_job(job_id, states, done, project_id=project_id)
        return states

    def add_rebuild_job(
        self,
        job_id: str,
        after: Mapping[str, Sysprep | None],
        *,
        running: int = 1,
        final: str = "SUCCESS",
        project_id: str | None = None,
    ) -> list[dict[str, Any]]:
        fleet = self.fleet(project_id)
        desktops = [fleet[d] for d in after]
        states = job_states(job_id, desktops, running=running, final=final, job_type="REBUILD_DESKTOP")
        for desktop in desktops:
            fleet.update(desktop.desktop_id, task_status=REBUILDING)

        def done(status: str) -> None:
            for desktop in desktops:
                sysprep = after[desktop.desktop_id] if status == "SUCCESS" else desktop.sysprep
                fleet.update(desktop.desktop_id, task_status=None, sysprep=sysprep)

        self.add_job(job_id, states, done, project_id=project_id)
        return states

    # The calls ------------------------------------------------------------------------------------

    def _page(
        self, request: Request, maximum: int, default: int, desktops: Sequence[Desktop] | None = None
    ) -> Answer | tuple[list[Desktop], int]:
        params = dict(reversed(request.query))  # the first of a repeated parameter wins
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", str(default)))
        except ValueError:
            return self.error(400, "WKS.0001", "offset and limit must be integers", request.request_id)
        if offset < 0 or not 1 <= limit <= maximum:
            message = f"offset must be >= 0 and limit 1 to {maximum}, got offset {offset}, limit {limit}"
            return self.error(400, "WKS.0001", message, request.request_id)
        if desktops is None:
            fleet = self._fleet_of(request)
            return fleet.page(offset, limit), len(fleet)
        return list(desktops[offset : offset + limit]), len(desktops)

    def _fleet_of(self, request: Request) -> Fleet:
        return self.fleet(request.project_id)

    def _tagged(self, request: Request, maximum: int | None) -> Answer | list[Desktop] | None:
        """The desktops the `tag` parameter selects (None: no `tag` given)."""
        given = [value for key, value in request.query if key == "tag"]
        if not given:
            return None
        text = given[0]
        if maximum is not None and len(text) > maximum:
            message = f"tag is at most {maximum} characters, got {len(text)}"
            return self.error(400, "WKS.0001", message, request.request_id)
        wanted: list[tuple[str, str | None]] = []
        for pair in text.split(","):
            key, sign, value = pair.partition("=")
            if not key:
                message = f"tag must be key1=value1,key2=value2, got {text!r}"
                return self.error(400, "WKS.0001", message, request.request_id)
            wanted.append((key, value if sign else None))
        return self._fleet_of(request).tagged(wanted)

    def _list(self, request: Request) -> Answer:
        tagged = self._tagged(request, None)
        if isinstance(tagged, Answer):
            return tagged
        page = self._page(request, LIST_MAX, LIST_MAX, tagged)
        if isinstance(page, Answer):
            return page
        desktops, total = page
        return json_answer(200, {"total_count": total, "desktops": [d.record() for d in desktops]})

    def _detail(self, request: Request) -> Answer:
        """ListDesktopsDetail, filtered by desktop_id (repeatable, at most 100) and by `tag` when given."""
        ids = [value for key, value in request.query if key == "desktop_id"]
        if len(ids) > DETAIL_IDS_MAX:
            message = f"desktop_id takes at most {DETAIL_IDS_MAX} ids, got {len(ids)}"
            return self.error(400, "WKS.0001", message, request.request_id)
        fleet = self._fleet_of(request)
        selected = self._tagged(request, TAG_FILTER_MAX)
        if isinstance(selected, Answer):
            return selected
        if ids:
            found = (fleet.get(d) for d in dict.fromkeys(i.lower() for i in ids))
            by_id = [d for d in found if d is not None]
            selected = by_id if selected is None else [d for d in by_id if d in selected]
        page = self._page(request, DETAIL_MAX, 500, selected)
        if isinstance(page, Answer):
            return page
        desktops, total = page
        return json_answer(200, {"desktops": [d.record() for d in desktops], "total_count": total})

    def _sysprep(self, request: Request) -> Answer:
        data = request.json()
        ids = data.get("desktop_ids") if isinstance(data, dict) else None
        if not isinstance(ids, list) or not all(isinstance(d, str) for d in ids):
            message = 'the body must be {"desktop_ids": [...]}, a list of desktop id strings'
            return self.error(400, "WKS.0001", message, request.request_id)
        if not 1 <= len(ids) <= SYSPREP_MAX:
            message = f"desktop_ids must hold 1 to {SYSPREP_MAX} ids, got {len(ids)}"
            return self.error(400, "WKS.0001", message, request.request_id)
        infos, seen = [], set()
        fleet = self._fleet_of(request)
        for desktop_id in ids:
            desktop = fleet.get(desktop_id)  # ids match case-insensitively, once each
            record = desktop.sysprep_record() if desktop is not None else None
            if record is not None and record["desktop_id"] not in seen:  # unknown and info-less ids are left out
                seen.add(record["desktop_id"])
                infos.append(record)
        return json_answer(200, {"sysprep_infos": infos})

    def _show(self, request: Request) -> Answer:
        (desktop_id,) = request.params
        desktop = self._fleet_of(request).get(desktop_id)
        record = desktop.sysprep_record() if desktop is not None else None
        if record is None:
            return self.error(404, "WKS.0404", f"no Sysprep info for desktop {desktop_id}", request.request_id)
        return json_answer(200, {"sysprep_version": record["sysprep_version"], "support_create_image": True})

    def _job(self, request: Request) -> Answer:
        (job_id,) = request.params
        key = (request.project_id or self.emulator.project_id, job_id)
        with self.emulator._lock:
            states = self._jobs.get(key)
            if not states:
                state = None
            elif len(states) > 1:
                state = states.pop(0)
            else:
                state = states[0]
                done = self._on_done.pop(key, None)
                if done is not None:  # the final state, served for the first time: the desktops are done
                    done(str(state.get("status")))
        if state is None:
            return self.error(404, "WKS.0404", f"job {job_id} does not exist", request.request_id)
        return json_answer(200, state)
