"""Workspace adapter: the calls the function makes, answers validated into models.

Paths, parameters and limits are those of Huawei's API Explorer definitions (tests/data/huawei_api_definitions.json);
the conformance test builds the official request model from every request sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from .client import SignedClient
from .models import Desktop, DesktopPage, Job, SysprepAnswer, SysprepInfo, parse_answer

SYSPREP_BATCH = 100  # CheckSysprepInfo takes 1 to 100 ids
LIST_PAGE = 1000  # ListDesktops' largest page
DETAIL_IDS = 100  # ListDesktopsDetail's desktop_id filter takes at most 100 ids


class Workspace:
    def __init__(self, client: SignedClient, endpoint: str, project_id: str, keep: float = 0.0) -> None:
        self.client = client
        self.endpoint = endpoint
        self.base = f"/v2/{quote(project_id, safe='')}"
        self.keep = keep  # seconds of the deadline its calls leave for what follows (publishing)

    def list_page(self, offset: int, limit: int = LIST_PAGE) -> DesktopPage:
        """ListDesktops: one page of the project's desktops."""
        call = "workspace ListDesktops"
        query = [("offset", offset), ("limit", limit)]
        body = self.client.call(call, "GET", self.endpoint, f"{self.base}/desktops", query=query, keep=self.keep)
        return parse_answer(DesktopPage, call, body)

    def desktops(self, desktop_ids: Sequence[str]) -> list[Desktop]:
        """ListDesktopsDetail filtered by desktop_id: these desktops' state (a task in progress, say). Desktops
        Workspace does not know are left out, as are rows for desktops not asked for."""
        if not 1 <= len(desktop_ids) <= DETAIL_IDS:
            raise ValueError(f"ListDesktopsDetail takes 1 to {DETAIL_IDS} desktop ids, got {len(desktop_ids)}")
        call = "workspace ListDesktopsDetail"
        query: list[tuple[str, str | int]] = [("desktop_id", d) for d in desktop_ids]
        query += [("offset", 0), ("limit", DETAIL_IDS)]
        body = self.client.call(call, "GET", self.endpoint, f"{self.base}/desktops/detail", query=query, keep=self.keep)
        wanted = {d.lower() for d in desktop_ids}
        return [d for d in parse_answer(DesktopPage, call, body).desktops if d.desktop_id.lower() in wanted]

    def check_sysprep(self, desktop_ids: Sequence[str]) -> list[SysprepInfo]:
        """CheckSysprepInfo."""
        if not 1 <= len(desktop_ids) <= SYSPREP_BATCH:
            raise ValueError(f"CheckSysprepInfo takes 1 to {SYSPREP_BATCH} ids, got {len(desktop_ids)}")
        call = "workspace CheckSysprepInfo"
        body = self.client.call(
            call,
            "POST",
            self.endpoint,
            f"{self.base}/sysprep",
            body={"desktop_ids": list(desktop_ids)},
            keep=self.keep,
        )
        return parse_answer(SysprepAnswer, call, body).sysprep_infos

    def job(self, job_id: str) -> Job:
        """ShowJob."""
        call = "workspace ShowJob"
        path = f"{self.base}/workspace-jobs/{quote(job_id, safe='')}"
        return parse_answer(Job, call, self.client.call(call, "GET", self.endpoint, path, keep=self.keep))
