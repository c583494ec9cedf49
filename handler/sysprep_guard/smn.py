"""SMN adapter: publish one notification to a topic."""

from __future__ import annotations

from urllib.parse import quote

from .client import SignedClient
from .models import PublishAnswer, parse_answer
from .notification import MESSAGE_MAX_BYTES, SUBJECT_MAX_BYTES, Notification

NO_ID = "(accepted, no message_id)"


class Smn:
    def __init__(self, client: SignedClient, endpoint: str, project_id: str, keep: float = 0.0) -> None:
        self.client = client
        self.endpoint = endpoint
        self.base = f"/v2/{project_id}"
        self.keep = keep  # seconds of the deadline left for the handler to return

    def publish(self, topic_urn: str, notification: Notification) -> str:
        """Publish and return SMN's message id."""
        if (
            len(notification.subject.encode()) > SUBJECT_MAX_BYTES
            or len(notification.message_structure.encode()) > MESSAGE_MAX_BYTES
        ):
            raise ValueError("subject or message over SMN's limits; the notification must be split first")
        call = "smn PublishMessage"
        path = f"{self.base}/notifications/topics/{quote(topic_urn, safe='')}/publish"
        body = {
            "subject": notification.subject,
            "message_structure": notification.message_structure,
            "message_attributes": notification.attributes,
        }
        answer = self.client.call(call, "POST", self.endpoint, path, body=body, keep=self.keep)
        # SMN took it: without a message_id it is delivered all the same, and publishing it again would only
        # send it twice.
        return parse_answer(PublishAnswer, call, answer if isinstance(answer, dict) else {}).message_id or NO_ID
