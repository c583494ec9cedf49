"""FunctionGraph: AsyncInvokeFunction, `POST /v2/{project_id}/fgs/functions/{function_urn}/invocations-async`.

Sources: the API Explorer definition (mirror mingyang91/huawei-cloud-api-definitions @ e05e9a02,
schemas/FunctionGraph/src/AsyncInvokeFunction.json) and huaweicloudsdkfunctiongraph 3.1.219
(AsyncInvokeFunctionRequest{function_urn, x_cff_instance_memory, body: dict(str, object)},
AsyncInvokeFunctionResponse{request_id}). The body is the event, a JSON object, as sent; the answer is 202
{"request_id"}. Errors are {error_code, error_msg} with FunctionGraph's documented codes
(https://support.huaweicloud.com/intl/en-us/api-functiongraph/ErrorCode.html): FSS.0400 "Invalid parameter."
(a malformed URN), FSS.0403 "Forbidden", FSS.0406 "Not acceptable." (a body that is not a JSON object: "the request
body may not be in the required JSON format"), FSS.0413 "The request body is too large.", FSS.1051 "Not found the
function" (404, the example of the function API pages). An asynchronous request body takes at most 256 KB (the limits
table, https://support.huaweicloud.com/eu/fr-fr/productdesc-functiongraph/functiongraph_01_0150.html); what the call
answers beyond it is undocumented: the emulator answers 413 FSS.0413, the documented code for a body too large.

The URN is `urn:fss:{region}:{project_id}:function:{package}:{name}:{version}` (the definition). The emulator wants
all eight parts: whether the call takes a URN without its version, or an alias, is undocumented, so it asks for the
form that certainly works. Functions registered with `add` run in the emulator's process, like one function
instance: one invocation at a time, in the order accepted, on one worker thread, each started once its caller has
its 202. The platform's retries of a failed asynchronous invocation are not emulated.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .faults import Fault
from .http import GATEWAY, Answer, Endpoint, Request, json_answer

if TYPE_CHECKING:
    from .core import Emulator, Route

BODY_MAX_BYTES = 256 * 1024  # an asynchronous invocation's request body
ENDPOINT = Endpoint(GATEWAY.authentication, project_in_path=True, max_request_bytes=BODY_MAX_BYTES)

# The definition's URN form. Function names: a letter first, then letters, digits, _ and -, at most 60 (CreateFunction's
# func_name); the package (app) and version the emulator only holds to plain characters ('!' marks an alias).
_URN = re.compile(
    r"^urn:fss:(?P<region>[a-z0-9-]+):(?P<project_id>[A-Za-z0-9]+):function:"
    r"(?P<package>[A-Za-z0-9_.-]{1,64}):(?P<name>[A-Za-z][A-Za-z0-9_-]{0,59}):(?P<version>[A-Za-z0-9_.!-]{1,64})$"
)

URN_FORM = "urn:fss:REGION:PROJECT:function:PACKAGE:NAME:VERSION"
Run = Callable[[dict[str, Any], str], Any]


@dataclass(frozen=True)
class FunctionUrn:
    region: str
    project_id: str
    package: str
    name: str
    version: str

    @classmethod
    def parse(cls, urn: str) -> FunctionUrn | None:
        match = _URN.match(urn)
        return None if match is None else cls(**match.groupdict())


@dataclass
class Invocation:
    """One accepted invocation; `result` is what the function returned, `error` the text of what it raised."""

    urn: str
    event: dict[str, Any]
    request_id: str
    result: Any = None
    error: str | None = None
    finished: bool = False
    trace: str | None = None  # the traceback, when it raised


def throttled() -> Fault:
    """FunctionGraph refusing for too many requests (429 FSS.0429, its error table), for inject("invoke_async")."""
    return Fault.answer(429, {"error_code": "FSS.0429", "error_msg": "Too many requests."}, name="fgs_throttled")


class FunctionGraph:
    bad_request_code = "FSS.0400"
    forbidden_code = "FSS.0403"
    accounts = "central"  # the central account's projects only

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.functions: dict[str, Run] = {}
        self.invocations: list[Invocation] = []  # in the order accepted
        self._queue: deque[tuple[Invocation, Run]] = deque()
        self._changed = threading.Condition()
        self._pending = 0  # accepted and not finished
        self._worker: threading.Thread | None = None
        self._stopping = False

    def routes(self) -> list[Route]:
        from .core import Route

        pattern = re.compile(r"^/v2/([^/]+)/fgs/functions/([^/]+)/invocations-async/?$")
        return [Route("POST", pattern, "invoke_async", "AsyncInvokeFunction", self._invoke, self, ENDPOINT)]

    def error(self, status: int, code: str, message: str, request_id: str, close: bool = False) -> Answer:
        """FunctionGraph's error body: {error_code, error_msg}."""
        if code == self.bad_request_code and status == 413:  # the core's refusal of a body over the limit
            code = "FSS.0413"
        return json_answer(status, {"error_code": code, "error_msg": message}, close=close)

    def add(self, urn: str, run: Run) -> None:
        if FunctionUrn.parse(urn) is None:
            raise ValueError(f"not a function URN {URN_FORM}: {urn!r}")
        with self._changed:
            self.functions[urn] = run

    # The call ------------------------------------------------------------------------------------------

    def _invoke(self, request: Request) -> Answer:
        (urn,) = request.params
        parsed = FunctionUrn.parse(urn)
        if parsed is None:
            message = f"Invalid parameter. function_urn {urn!r} is not {URN_FORM}"
            return self.error(400, "FSS.0400", message, request.request_id)
        run = self.functions.get(urn)
        if run is None or parsed.project_id != request.project_id:
            return self.error(404, "FSS.1051", "Not found the function", request.request_id)
        event = request.json() if request.body.strip() else {}  # no body: an empty event (the body is optional)
        if not isinstance(event, dict):
            message = "Not acceptable. The request body must be a JSON object (the event)"
            return self.error(406, "FSS.0406", message, request.request_id)
        invocation = Invocation(urn, event, str(uuid.uuid4()))
        with self._changed:
            self.invocations.append(invocation)
            self._pending += 1
        answer = json_answer(202, {"request_id": invocation.request_id})
        answer.after = lambda: self._enqueue(invocation, run)  # the run starts once the caller has its 202
        return answer

    # The worker: one instance, one invocation at a time ------------------------------------------------------

    def _enqueue(self, invocation: Invocation, run: Run) -> None:
        with self._changed:
            self._queue.append((invocation, run))
            if self._worker is None or not self._worker.is_alive():
                self._stopping = False
                self._worker = threading.Thread(target=self._work, name="emulator-functiongraph", daemon=True)
                self._worker.start()
            self._changed.notify_all()

    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._stopping)
                if self._stopping:
                    return
                invocation, run = self._queue.popleft()
            event = json.loads(json.dumps(invocation.event))  # the function's own copy: the record stays as sent
            try:
                invocation.result = run(event, invocation.request_id)
            except Exception as exc:
                invocation.error = f"{type(exc).__name__}: {exc}"
                invocation.trace = traceback.format_exc()
            with self._changed:
                invocation.finished = True
                self._pending -= 1
                self._changed.notify_all()

    def wait(self, timeout: float = 30) -> bool:
        """Until every accepted invocation has finished (True), or `timeout` seconds have passed (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        """Stop the worker once its current invocation (if any) returns; queued ones stay unrun."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=5)
        with self._changed:
            self._worker = None
