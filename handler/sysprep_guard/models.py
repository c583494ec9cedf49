"""Pydantic models of the API answers the function reads (only the fields it uses)."""

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
    desktop_id: str
    sysprep_version: str | None = None
    support_hibernate: bool | None = None
    support_update_route: bool | None = None


class SysprepAnswer(_Answer):
    sysprep_infos: list[SysprepInfo]


class Desktop(_Answer):
    desktop_id: str
    computer_name: str | None = None
    user_name: str | None = None
    status: str | None = None


class DesktopPage(_Answer):
    total_count: int | None = Field(default=None, ge=0)
    desktops: list[Desktop]


class JobEntities(_Answer):
    desktop_id: str | None = None
    desktop_name: str | None = None
    user_name: str | None = None


class SubJob(_Answer):
    id: str | None = None
    status: str | None = None
    entities: JobEntities | None = None
    fail_reason: str | None = None


class Job(_Answer):
    id: str | None = None
    status: str | None = None
    entities: JobEntities | None = None
    sub_jobs: list[SubJob] = []
    fail_reason: str | None = None


class PublishAnswer(_Answer):
    message_id: str
