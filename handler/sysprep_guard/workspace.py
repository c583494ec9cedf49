"""Workspace adapter: the three calls the function makes, answers validated into models."""

from __future__ import annotations

from collections.abc import Sequence

from .client import SignedClient
from .models import DesktopPage, Job, SysprepAnswer, SysprepInfo, parse_answer

SYSPREP_BATCH = 100  # CheckSysprepInfo takes 1 to 100 ids
LIST_PAGE = 1000  # ListDesktops' largest page


class Workspace:
    def __init__(self, client: SignedClient, endpoint: str, project_id: str, keep: float = 0.0) -> None:
        self.client = client
        self.endpoint = endpoint
        self.base = f"/v2/{project_id}"
        self.keep = keep  # seconds of the deadline its calls leave for what follows (publishing)

    def list_page(self, offset: int, limit: int = LIST_PAGE) -> DesktopPage:
        call = "workspace ListDesktops"
        body = self.client.call(
            call,
            "GET",
            self.endpoint,
            f"{self.base}/desktops",
            query=[("offset", offset), ("limit", limit)],
            keep=self.keep,
        )
        return parse_answer(DesktopPage, call, body)

    def check_sysprep(self, desktop_ids: Sequence[str]) -> list[SysprepInfo]:
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
        call = "workspace ShowJob"
        body = self.client.call(call, "GET", self.endpoint, f"{self.base}/workspace-jobs/{job_id}", keep=self.keep)
        return parse_answer(Job, call, body)
