"""SMN: PublishMessage, with SMN's documented rules for a publish body.

Error codes SMN.0006, SMN.0021 and SMN.0032 are used as SMN documents them; SMN.0001 is the emulator's own.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from .http import Answer, Request, json_answer, load_json

if TYPE_CHECKING:
    from .core import Emulator, Route

SUBJECT_MAX_BYTES = 512
MESSAGE_MAX_BYTES = 256 * 1024
ATTRIBUTES_MAX = 10
ATTRIBUTE_TYPES = frozenset({"STRING", "STRING_ARRAY", "PROTOCOL"})


class Smn:
    bad_request_code = "SMN.0001"
    forbidden_code = "SMN.0001"
    accounts = "central"  # the central account's projects only

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[Route]:
        from .core import Route

        pattern = re.compile(r"^/v2/([^/]+)/notifications/topics/([^/]+)/publish/?$")
        return [Route("POST", pattern, "publish", "PublishMessage", self._publish, self)]

    def error(self, status: int, code: str, message: str, request_id: str, close: bool = False) -> Answer:
        """SMN's error body: {request_id, code, message}."""
        return json_answer(status, {"request_id": request_id, "code": code, "message": message}, close=close)

    def _publish(self, request: Request) -> Answer:
        from .core import Published

        (topic,) = request.params
        if topic not in self.emulator.topics:
            return self.error(404, "SMN.0006", "Topic not found.", request.request_id)
        data = request.json()
        problem = publish_problem(data)
        if problem is not None:
            return self.error(400, problem[0], problem[1], request.request_id)
        assert isinstance(data, dict)  # publish_problem checked it
        message_id = uuid.uuid4().hex
        with self.emulator._lock:
            self.emulator.published.append(Published(topic, data["subject"], data, message_id))
        return json_answer(200, {"request_id": request.request_id, "message_id": message_id})


def publish_problem(data: Any) -> tuple[str, str] | None:
    """SMN's rules for a publish body, as (code, message), or None if it is fine."""
    if not isinstance(data, dict):
        return "SMN.0001", "the body must be a JSON object"
    subject = data.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        return "SMN.0001", "subject is required"
    if len(subject.encode()) > SUBJECT_MAX_BYTES:
        return "SMN.0001", f"subject is {len(subject.encode())} bytes, over {SUBJECT_MAX_BYTES}"
    given = [k for k in ("message", "message_structure", "message_template_name") if data.get(k) is not None]
    if len(given) != 1:
        return "SMN.0001", f"give exactly one of message, message_structure, message_template_name; got {given}"
    if "message" in given:
        message = data["message"]
        if not isinstance(message, str) or not message:
            return "SMN.0001", "message must be a non-empty string"
        if len(message.encode()) > MESSAGE_MAX_BYTES:
            return "SMN.0001", f"message is {len(message.encode())} bytes, over {MESSAGE_MAX_BYTES}"
    elif "message_structure" in given:
        structure = data["message_structure"]
        parsed = load_json(structure.encode()) if isinstance(structure, str) else None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("default"), str):
            return "SMN.0021", "MessageStructure is invalid: a JSON object string with a string 'default' key"
        if len(structure.encode()) > MESSAGE_MAX_BYTES:
            return "SMN.0021", f"message_structure is over {MESSAGE_MAX_BYTES} bytes"
    elif not isinstance(data["message_template_name"], str) or not data["message_template_name"]:
        return "SMN.0032", "Parameter: message_template_name is invalid."
    attributes = data.get("message_attributes")
    if attributes is not None:
        if not isinstance(attributes, list) or len(attributes) > ATTRIBUTES_MAX:
            return "SMN.0001", f"message_attributes must be a list of at most {ATTRIBUTES_MAX}"
        for attribute in attributes:
            if not _valid_attribute(attribute):
                return "SMN.0001", f"invalid message attribute {attribute!r}"
    ttl = data.get("time_to_live")
    if ttl is not None and not (isinstance(ttl, str) and ttl.isdigit()):
        return "SMN.0001", "time_to_live must be a string of seconds"
    return None


# SMN's rules for message attributes (PublishMessage's MessageAttribute): a name of lower-case letters, digits and
# single inner underscores, 1 to 32; a STRING value of 1 to 32 letters (Chinese too), digits or underscores; a
# STRING_ARRAY of 1 to 10 distinct such values; PROTOCOL, a list of protocol names.
_ATTRIBUTE_NAME = re.compile(r"^(?!_)(?!.*__)[a-z0-9_]{1,32}(?<!_)$")
_ATTRIBUTE_VALUE = re.compile(r"^[A-Za-z0-9_\u4e00-\u9fff]{1,32}$")


def _valid_attribute(attribute: Any) -> bool:
    if not isinstance(attribute, dict) or not _ATTRIBUTE_NAME.match(str(attribute.get("name", ""))):
        return False
    kind, value = attribute.get("type"), attribute.get("value")
    if kind not in ATTRIBUTE_TYPES:
        return False
    if kind == "STRING":
        return isinstance(value, str) and bool(_ATTRIBUTE_VALUE.match(value))
    if not (isinstance(value, list) and 1 <= len(value) <= 10 and all(isinstance(v, str) for v in value)):
        return False
    return kind == "PROTOCOL" or (len(set(value)) == len(value) and all(_ATTRIBUTE_VALUE.match(v) for v in value))
