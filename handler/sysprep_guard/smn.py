"""SMN adapter: publish one message to a topic."""

from __future__ import annotations

from urllib.parse import quote

from .client import SignedClient
from .models import PublishAnswer, parse_answer

SUBJECT_MAX_BYTES = 512
MESSAGE_MAX_BYTES = 256 * 1024


class Smn:
    def __init__(self, client: SignedClient, endpoint: str, project_id: str, keep: float = 0.0) -> None:
        self.client = client
        self.endpoint = endpoint
        self.base = f"/v2/{project_id}"
        self.keep = keep  # seconds of the deadline left for the handler to return

    def publish(self, topic_urn: str, subject: str, message: str) -> str:
        """Publish and return SMN's message id."""
        if len(subject.encode()) > SUBJECT_MAX_BYTES or len(message.encode()) > MESSAGE_MAX_BYTES:
            raise ValueError("subject or message over SMN's limits; the report must split it first")
        call = "smn PublishMessage"
        path = f"{self.base}/notifications/topics/{quote(topic_urn, safe='')}/publish"
        body = self.client.call(
            call,
            "POST",
            self.endpoint,
            path,
            body={"subject": subject, "message": message},
        )
        return parse_answer(PublishAnswer, call, body).message_id
