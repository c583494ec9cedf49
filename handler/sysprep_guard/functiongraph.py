"""FunctionGraph adapter: invoke a function asynchronously (AsyncInvokeFunction), for a sweep's fan-out.

`POST /v2/{project_id}/fgs/functions/{function_urn}/invocations-async`, the event as the JSON body (at most 256 KB),
answered 202 `{"request_id"}` (Huawei's API definition, kept in tests/data/huawei_api_definitions.json; the
huaweicloudsdkfunctiongraph models). The caller needs `functiongraph:function:invokeAsync` on the function.
"""

import os
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from .client import SignedClient
from .errors import ApiError
from .models import parse_answer

CALL = "functiongraph AsyncInvokeFunction"


class AsyncAnswer(BaseModel):
    """AsyncInvokeFunctionResponse."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    request_id: str = Field(min_length=1, max_length=128)


class FunctionGraph:
    def __init__(self, client: SignedClient, endpoint: str, project_id: str, keep: float = 0.0) -> None:
        self.client = client
        self.endpoint = endpoint
        self.base = f"/v2/{quote(project_id, safe='')}/fgs/functions"
        self.keep = keep

    def invoke_async(self, function_urn: str, event: dict[str, Any]) -> str:
        """The request id FunctionGraph gives the invocation. An answer without one is an ApiError: that the
        invocation was queued is then unknown, and the dispatch says so rather than count it started."""
        path = f"{self.base}/{quote(function_urn, safe='')}/invocations-async"
        answer = self.client.call(CALL, "POST", self.endpoint, path, body=event, keep=self.keep)
        if not isinstance(answer, dict) or not answer.get("request_id"):
            raise ApiError(CALL, "answered without a request id: whether the invocation was queued is unknown")
        return parse_answer(AsyncAnswer, CALL, answer).request_id


def own_urn(context: Any, region: str, project_id: str) -> str | None:
    """This function's URN, `urn:fss:{region}:{project_id}:function:{package}:{name}:{version}`, from the
    runtime's context (getFunctionName, getPackage, getVersion; FunctionGraph's context methods) or its
    RUNTIME_FUNC_NAME / RUNTIME_PACKAGE / RUNTIME_FUNC_VERSION variables. None when the name cannot be told."""

    def ask(method: str, variable: str) -> str | None:
        fn = getattr(context, method, None)
        value = fn() if callable(fn) else None
        return str(value) if value else os.environ.get(variable) or None

    name = ask("getFunctionName", "RUNTIME_FUNC_NAME")
    if name is None:
        return None
    package = ask("getPackage", "RUNTIME_PACKAGE") or "default"  # FunctionGraph's default application
    version = ask("getVersion", "RUNTIME_FUNC_VERSION") or "latest"
    return f"urn:fss:{region}:{project_id}:function:{package}:{name}:{version}"
