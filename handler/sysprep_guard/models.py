"""Pydantic models of the API answers the function reads (only the fields it uses).

Field names are those of the huaweicloudsdkworkspace / huaweicloudsdksmn 3.1.219 response models; the
conformance test (tests/test_conformance.py) checks that each is one.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ApiError

M = TypeVar("M", bound=BaseModel)


def parse_answer(model: type[M], call: str, body: Any) -> M:
    """A 2xx answer that is not the documented JSON is an error, never an empty success."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(
            call,
            f"answer does not match the documented shape ({where}: {first['msg']})",
        ) from None


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SysprepInfo(_Answer):
    """DesktopSysprepInfo."""

    desktop_id: str
    sysprep_version: str | None = None
    support_hibernate: bool | None = None
    support_update_route: bool | None = None


class SysprepAnswer(_Answer):
    """CheckSysprepInfoResponse."""

    sysprep_infos: list[SysprepInfo]


# task_status values that name no task in progress. DesktopDetailInfo documents the others (scheduling,
# block_device_mapping, networking, spawning, rebooting, rebuilding, ..., deleting); deleteFailed is an outcome.
_IDLE_TASKS = frozenset({"", "null", "none", "deletefailed"})


class Desktop(_Answer):
    """SimpleDesktopInfo (ListDesktops) and DesktopDetailInfo (ListDesktopsDetail): the fields both share."""

    desktop_id: str
    computer_name: str | None = None
    user_name: str | None = None
    status: str | None = None
    task_status: str | None = None

    @property
    def busy(self) -> bool:
        """Workspace is working on it (creating, rebuilding, rebooting, ...): its Sysprep may not be final."""
        return (self.task_status or "").strip().lower() not in _IDLE_TASKS


class DesktopPage(_Answer):
    """ListDesktopsResponse and ListDesktopsDetailResponse."""

    total_count: int | None = Field(default=None, ge=0)
    desktops: list[Desktop]


class JobEntities(_Answer):
    desktop_id: str | None = None
    desktop_name: str | None = None
    user_name: str | None = None


class SubJob(_Answer):
    """JobDetailInfo, one desktop's part of a job."""

    id: str | None = None
    status: str | None = None
    entities: JobEntities | None = None
    error_code: str | None = None
    fail_reason: str | None = None


class Job(_Answer):
    """ShowJobResponse. Its status is WAITING, RUNNING, SUCCESS or FAILED."""

    id: str | None = None
    status: str | None = None
    sub_jobs: list[SubJob] = []
    job_error_code: str | None = None
    fail_reason: str | None = None


class PublishAnswer(_Answer):
    """PublishMessageResponse."""

    message_id: str
