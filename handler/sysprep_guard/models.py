"""Pydantic models of the API answers the function reads (only the fields it uses).

Field names are those of the huaweicloudsdkworkspace / huaweicloudsdksmn 3.1.219 response models; the
conformance test (tests/test_conformance.py) checks that each is one.
"""

# No `from __future__ import annotations`: this module's models are made at every cold start, and with it pydantic
# would evaluate each field's annotation from its text.

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ApiError

M = TypeVar("M", bound=BaseModel)

# A Workspace desktop id (a UUID), matched whole: "$" would let a trailing newline through.
DESKTOP_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_desktop_id(value: object) -> bool:
    return isinstance(value, str) and DESKTOP_ID.fullmatch(value) is not None


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

    @field_validator("sysprep_version", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return value if isinstance(value, str) else None  # no string: no version

    @field_validator("support_hibernate", "support_update_route", mode="before")
    @classmethod
    def _flag(cls, value: object) -> object:
        return value if isinstance(value, bool) else None  # only a JSON true is evidence of support


class SysprepAnswer(_Answer):
    """CheckSysprepInfoResponse. Entries that are not objects with a string desktop_id are left out."""

    sysprep_infos: list[SysprepInfo]

    @field_validator("sysprep_infos", mode="before")
    @classmethod
    def _entries(cls, value: object) -> object:
        if isinstance(value, list):
            return [e for e in value if isinstance(e, dict) and isinstance(e.get("desktop_id"), str)]
        return value


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
    tags: dict[str, str] = {}  # Tag {key, value} (value defaults to ""), as key -> value

    @property
    def busy(self) -> bool:
        """Workspace is working on it (creating, rebuilding, rebooting, ...): its Sysprep may not be final."""
        return (self.task_status or "").strip().lower() not in _IDLE_TASKS

    def with_id(self, desktop_id: str) -> "Desktop":
        """This desktop under `desktop_id` (its id in lower case): a copy only where that differs, since Workspace
        gives lower case and copying each desktop of a sweep adds up."""
        return self if desktop_id == self.desktop_id else self.model_copy(update={"desktop_id": desktop_id})


_DESKTOP_FIELDS = tuple(f for f in Desktop.model_fields if f != "tags")
MAX_TAGS = 50  # a desktop carries a few tags; an answer with thousands is not believed past these


def _tags(value: object) -> dict[str, str]:
    """Tag objects {key, value} with a string key; anything else in the list is left out."""
    if not isinstance(value, list):
        return {}
    tags = {}
    for tag in value[:MAX_TAGS]:
        if isinstance(tag, dict) and isinstance(tag.get("key"), str):
            tags[tag["key"][:128]] = tag["value"][:255] if isinstance(tag.get("value"), str) else ""
    return tags


class DesktopPage(_Answer):
    """ListDesktopsResponse and ListDesktopsDetailResponse. A row without a valid desktop id is left out and
    counted in `rejected`; a field of the wrong type is dropped, not the row."""

    total_count: int | None = Field(default=None, ge=0)
    desktops: list[Desktop]
    rejected: int = 0

    @field_validator("total_count", mode="before")
    @classmethod
    def _count(cls, value: object) -> object:
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    @model_validator(mode="before")
    @classmethod
    def _rows(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("desktops"), list):
            rows, rejected = [], 0
            for row in data["desktops"]:
                if isinstance(row, dict) and is_desktop_id(row.get("desktop_id")):
                    fields = {k: row[k] for k in _DESKTOP_FIELDS if isinstance(row.get(k), str)}
                    if row.get("tags"):
                        fields["tags"] = _tags(row["tags"])
                    rows.append(fields)
                else:
                    rejected += 1
            return {"total_count": data.get("total_count"), "desktops": rows, "rejected": rejected}
        return data


# ShowJob's answer is read only for a creation event's jobs: its models are built when one first comes (defer_build),
# not at every cold start.
class JobEntities(_Answer):
    model_config = ConfigDict(defer_build=True)

    desktop_id: str | None = None
    desktop_name: str | None = None
    user_name: str | None = None


class SubJob(_Answer):
    """JobDetailInfo, one desktop's part of a job."""

    model_config = ConfigDict(defer_build=True)

    id: str | None = None
    status: str | None = None
    entities: JobEntities | None = None
    error_code: str | None = None
    fail_reason: str | None = None


class Job(_Answer):
    """ShowJobResponse. Its status is WAITING, RUNNING, SUCCESS or FAILED."""

    model_config = ConfigDict(defer_build=True)

    id: str | None = None
    status: str | None = None
    sub_jobs: list[SubJob] = []
    job_error_code: str | None = None
    fail_reason: str | None = None


class PublishAnswer(_Answer):
    """PublishMessageResponse. A 2xx means SMN took the message, message_id or not."""

    message_id: str | None = None
