"""Helpers for tests/test_fuzz_answers.py: a mocked Workspace and SMN that serve hostile answers, the mutations
that make them (each a small frozen dataclass, so that a falsifying example prints readably), the reference
readers that say what an answer documents, and the invariants every run must keep.

Answers are computed from the request (the ids it asks for) and a drawn plan of mutations, never from the order
in which calls arrive: the handler makes calls from a thread pool, and hypothesis needs every example to replay
exactly.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import responses
from hypothesis import strategies as st

import index
from conftest import PROJECT, SMN, WORKSPACE, FakeClock, uuid_for
from sysprep_guard.errors import GuardError
from sysprep_guard.policy import parse_version

# The policy every property runs under: every rule on, so that every field of an answer matters.
POLICY = {"MIN_SYSPREP_VERSION": "3.0.10", "REQUIRE_HIBERNATE": "true", "REQUIRE_UPDATE_ROUTE": "true"}
MIN_VERSION = (3, 0, 10)
SUMMARY_MAX_BYTES = 6 * 1024 * 1024  # FunctionGraph's limit on a synchronous invocation's response
WORKSPACE_CALL_SECONDS = 1.0  # each Workspace answer takes this long on the fake clock (SMN's take none)
JOB_ID = "8a2b4c6d-0e1f-4a3b-9c5d-7e9f0a1b2c99"
CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ANY_CASE_ID = re.compile(CANONICAL_ID.pattern, re.IGNORECASE)
BUSY_TASKS = ["spawning", "rebuilding", "rebooting", "scheduling", "deleting"]
IDLE_TASKS = [None, "", "null", "deleteFailed"]


def desktop_id(n: int) -> str:
    return uuid_for(n)


def stranger_id(n: int) -> str:
    """A well-formed desktop id that no event asks for and no fleet holds."""
    return f"99999999-0000-4000-8000-{n:012d}"


# Values too big to print: markers that a falsifying example shows by size -------------------------------------


@dataclass(frozen=True)
class Huge:
    """A string of `size` "x"s."""

    size: int

    def text(self) -> str:
        return "x" * self.size


@dataclass(frozen=True)
class Deep:
    """A JSON array nested `depth` deep, written out as text (the deepest are past what Python's json can read)."""

    depth: int


def realise(value: Any) -> Any:
    """A drawn value as it goes into an answer (a copy): each Huge becomes its string; Deep stays a marker that
    `dumps` writes."""
    if isinstance(value, Huge):
        return value.text()
    if isinstance(value, dict):
        return {k: realise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [realise(v) for v in value]
    return value


def dumps(body: Any) -> str:
    deep: list[int] = []

    def placeholder(obj: Any) -> str:
        if isinstance(obj, Deep):
            deep.append(obj.depth)
            return f"@@deep:{obj.depth}@@"
        raise TypeError(f"not JSON: {type(obj).__name__}")

    text = json.dumps(body, default=placeholder)
    for depth in deep:
        text = text.replace(f'"@@deep:{depth}@@"', "[" * depth + "]" * depth)
    return text


# Arbitrary JSON --------------------------------------------------------------------------------------------------

ANSWER_KEYS = [
    "desktops",
    "total_count",
    "desktop_id",
    "computer_name",
    "user_name",
    "status",
    "task_status",
    "sysprep_infos",
    "sysprep_version",
    "support_hibernate",
    "support_update_route",
    "id",
    "sub_jobs",
    "entities",
    "job_id",
    "error_code",
    "fail_reason",
    "x",
]
KEYS = st.one_of(st.sampled_from(ANSWER_KEYS), st.text(max_size=8))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            desktop_id(1),
            desktop_id(2),
            desktop_id(1).upper(),
            desktop_id(1) + "\n",
            JOB_ID,
            "SUCCESS",
            "RUNNING",
            "FAILED",
            "WAITING",
            "spawning",
            "3.0.10",
            "3.1.2",
            "true",
            "",
        ]
    ),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=6)),
    max_leaves=30,
)
NOT_A_LIST = st.one_of(SCALARS, st.dictionaries(KEYS, SCALARS, max_size=3))
NOT_A_DICT = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))
NOT_A_STRING = st.one_of(
    st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.lists(SCALARS, max_size=2)
)
HUGE = st.builds(Huge, st.sampled_from([10_000, 300_000, 2_500_000]))
DEEP = st.builds(Deep, st.sampled_from([100, 5_000, 100_000]))
# What a field may be set to: anything, a value of the wrong type, a huge string, hostile nesting.
FIELD_VALUES = st.one_of(JSON, NOT_A_STRING, HUGE, DEEP)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as often as its weight says (st.one_of would drop repeats: it dedupes)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(pool) - 1).flatmap(lambda i: pool[i])


def arbitrary_answer(row_keys: Sequence[str], list_key: str) -> st.SearchStrategy[Any]:
    """Arbitrary JSON, and arbitrary JSON shaped like the answer (a dict whose `list_key` holds dicts with the
    answer's keys), so that the handler's reading gets past the first check often enough to matter."""
    row = st.dictionaries(st.one_of(st.sampled_from(list(row_keys)), KEYS), SCALARS, max_size=5)
    shaped = st.fixed_dictionaries({list_key: st.lists(row, max_size=4)}, optional={"total_count": SCALARS, "x": JSON})
    return st.one_of(JSON, shaped, DEEP)


# Mutations of a list of rows (listing rows, detail rows, sysprep entries, sub-jobs) -----------------------------


def _at(rows: list[Any], i: int) -> int | None:
    return i % len(rows) if rows else None


@dataclass(frozen=True)
class Drop:
    i: int

    def apply(self, rows: list[Any]) -> None:
        if (k := _at(rows, self.i)) is not None:
            del rows[k]


@dataclass(frozen=True)
class Duplicate:
    i: int
    at: int

    def apply(self, rows: list[Any]) -> None:
        if (k := _at(rows, self.i)) is not None:
            rows.insert(self.at % (len(rows) + 1), copy.deepcopy(rows[k]))


@dataclass(frozen=True)
class Conflict:
    """A second row for the same desktop, put at `at`, that disagrees with the first on one field."""

    i: int
    key: str
    value: Any
    at: int = -1

    def apply(self, rows: list[Any]) -> None:
        if (k := _at(rows, self.i)) is not None and isinstance(rows[k], dict):
            twin = copy.deepcopy(rows[k])
            twin[self.key] = realise(self.value)
            rows.insert(self.at % (len(rows) + 1), twin)


@dataclass(frozen=True)
class Reorder:
    seed: int

    def apply(self, rows: list[Any]) -> None:
        random.Random(self.seed).shuffle(rows)


@dataclass(frozen=True)
class SetField:
    i: int
    key: str
    value: Any

    def apply(self, rows: list[Any]) -> None:
        if (k := _at(rows, self.i)) is not None and isinstance(rows[k], dict):
            rows[k][self.key] = realise(self.value)


@dataclass(frozen=True)
class DeleteField:
    i: int
    key: str

    def apply(self, rows: list[Any]) -> None:
        if (k := _at(rows, self.i)) is not None and isinstance(rows[k], dict):
            rows[k].pop(self.key, None)


@dataclass(frozen=True)
class ReplaceRow:
    i: int
    value: Any

    def apply(self, rows: list[Any]) -> None:
        if (k := _at(rows, self.i)) is not None:
            rows[k] = realise(self.value)


@dataclass(frozen=True)
class Append:
    """A row the truthful answer would not hold (another desktop's, or garbage)."""

    row: Any

    def apply(self, rows: list[Any]) -> None:
        rows.append(realise(self.row))


ID_VARIANTS = ["empty", "garbage", "newline", "space", "upper", "short", "long", "huge", "missing", "number"]


def id_variant(current: str, how: str) -> Any:
    return {
        "empty": "",
        "garbage": "not-a-desktop-id",
        "newline": current + "\n",
        "space": " " + current,
        "upper": current.upper(),
        "short": current[:-1],
        "long": current + "0",
        "huge": current + "x" * 300_000,
        "number": 12345,
    }[how]


@dataclass(frozen=True)
class SetId:
    """The row's desktop id (at `path` in the row) made missing, empty, not a UUID, a UUID with a trailing
    newline or a leading space, upper case, huge, or a number."""

    i: int
    how: str
    path: tuple[str, ...] = ("desktop_id",)

    def apply(self, rows: list[Any]) -> None:
        if (k := _at(rows, self.i)) is None:
            return
        node = rows[k]
        for key in self.path[:-1]:
            if not isinstance(node, dict) or not isinstance(node.get(key), dict):
                return
            node = node[key]
        if not isinstance(node, dict):
            return
        leaf = self.path[-1]
        if self.how == "missing":
            node.pop(leaf, None)
        else:
            current = node.get(leaf)
            node[leaf] = id_variant(current if isinstance(current, str) else desktop_id(0), self.how)


@dataclass(frozen=True)
class ManyRows:
    """A huge list: `count` more rows (fewer, if row `i` is itself huge), each a copy of row `i`, or each naming a
    desktop of its own."""

    count: int
    kind: str  # "copies" or "distinct"
    i: int = 0
    path: tuple[str, ...] = ("desktop_id",)

    def apply(self, rows: list[Any]) -> None:
        if (k := _at(rows, self.i)) is None:
            return
        template = rows[k]
        size = len(dumps(template))  # a copied huge row would make hundreds of MB: the list stays near 2 MB
        for n in range(min(self.count, max(1, 2_000_000 // size))):
            row = copy.deepcopy(template)
            if self.kind == "distinct" and isinstance(row, dict):
                node = row
                for key in self.path[:-1]:
                    node = node.setdefault(key, {}) if isinstance(node, dict) else node
                if isinstance(node, dict):  # ids of their own, whichever rows came before
                    node[self.path[-1]] = stranger_id(100_000 * len(rows) + n)
            rows.append(row)


# Mutations of a whole answer ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetKey:
    key: str
    value: Any

    def apply_body(self, body: Any) -> Any:
        if isinstance(body, dict):
            body[self.key] = realise(self.value)
        return body


@dataclass(frozen=True)
class DeleteKey:
    key: str

    def apply_body(self, body: Any) -> Any:
        if isinstance(body, dict):
            body.pop(self.key, None)
        return body


@dataclass(frozen=True)
class ReplaceBody:
    value: Any

    def apply_body(self, body: Any) -> Any:
        return realise(self.value)


def apply_plan(rows: list[Any], plan: Sequence[Any]) -> list[Any]:
    rows = copy.deepcopy(rows)
    for op in plan:
        if hasattr(op, "apply"):
            op.apply(rows)
    return rows


def apply_body_plan(body: Any, plan: Sequence[Any]) -> Any:
    for op in plan:
        if hasattr(op, "apply_body"):
            body = op.apply_body(body)
    return body


# The fleet -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Desk:
    """A desktop as the truthful cloud knows it."""

    n: int
    task_status: str | None = None
    version: str | None = "3.0.10"
    hibernate: bool | None = True
    update_route: bool | None = True

    @property
    def id(self) -> str:
        return desktop_id(self.n)

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "desktop_id": self.id,
            "computer_name": f"desk-{self.n}",
            "user_name": f"user{self.n}",
            "status": "ACTIVE",
        }
        if self.task_status is not None:
            row["task_status"] = self.task_status
        return row

    def info(self) -> dict[str, Any]:
        return {
            "desktop_id": self.id,
            "sysprep_version": self.version,
            "support_hibernate": self.hibernate,
            "support_update_route": self.update_route,
        }


@st.composite
def desks(draw: st.DrawFn, ns: Sequence[int], busy: bool = True, compliant: bool = False, drawn: int = 6) -> list[Desk]:
    """Desktops numbered `ns`, compliant or (unless `compliant`) not in each way, some (when `busy`) with a task
    in progress. Past the first `drawn`, they are compliant and idle (a fleet of 101 exercises batching without
    500 more draws)."""
    tasks = st.sampled_from([*IDLE_TASKS, *BUSY_TASKS]) if busy else st.sampled_from(IDLE_TASKS)
    if compliant:  # what a mutation may then turn into a false pass is everything
        versions, hibernate, route = st.sampled_from(["3.0.10", "3.1.2"]), st.just(True), st.just(True)
    else:
        versions = st.sampled_from(["3.0.10", "3.1.2", "3.0.9", None, "garbage"])
        hibernate, route = st.sampled_from([True, True, False, None]), st.sampled_from([True, True, False])
    ns = list(ns)
    head = [
        Desk(n, draw(tasks), draw(versions), draw(hibernate), draw(route)) for n in ns[:drawn]
    ]  # built here, so that a falsifying example prints them plainly
    return head + [Desk(n) for n in ns[drawn:]]


# The mocked cloud ------------------------------------------------------------------------------------------------

Answer = Callable[[list[str]], Any]


@dataclass
class MockCloud:
    """Workspace and SMN behind `responses`. Each Workspace answer is a function of the request; SMN is truthful.
    Every CheckSysprepInfo request and the answer it got are kept, to judge what the handler made of them."""

    clock: FakeClock
    list_page: Callable[[int, int], Any] | None = None  # (offset, limit) -> body
    detail: Answer | None = None  # desktop ids asked -> body
    sysprep: Answer | None = None
    jobs: dict[str, list[Any]] = field(default_factory=dict)  # job id -> its answers, the last one repeated
    sysprep_calls: list[tuple[list[str], Any]] = field(default_factory=list)
    calls: int = 0
    published: int = 0
    mock_errors: list[BaseException] = field(default_factory=list)

    def register(self, mock: responses.RequestsMock) -> None:
        mock.reset()
        base = f"{WORKSPACE}/v2/{PROJECT}"
        mock.add_callback(responses.GET, re.compile(rf"{re.escape(base)}/desktops\?.*"), self._guard(self._list))
        mock.add_callback(
            responses.GET, re.compile(rf"{re.escape(base)}/desktops/detail\?.*"), self._guard(self._detail)
        )
        mock.add_callback(responses.POST, f"{base}/sysprep", self._guard(self._sysprep))
        mock.add_callback(responses.GET, re.compile(rf"{re.escape(base)}/workspace-jobs/.*"), self._guard(self._job))
        mock.add_callback(
            responses.POST, re.compile(rf"{re.escape(SMN)}/v2/{PROJECT}/notifications/topics/.*"), self._publish
        )

    def _guard(self, fn: Callable[[Any], Any]) -> Callable[[Any], tuple[int, dict[str, str], str]]:
        def answer(request: Any) -> tuple[int, dict[str, str], str]:
            self.clock.t += WORKSPACE_CALL_SECONDS
            self.calls += 1
            try:
                return 200, {}, dumps(fn(request))
            except Exception as exc:  # a bug in this mock, not in the handler: reported as such
                self.mock_errors.append(exc)
                return 599, {}, "mock error"

        return answer

    def _list(self, request: Any) -> Any:
        query = parse_qs(urlsplit(request.url).query)
        assert self.list_page is not None, "ListDesktops was not expected"
        return self.list_page(int(query["offset"][0]), int(query["limit"][0]))

    def _detail(self, request: Any) -> Any:
        assert self.detail is not None, "ListDesktopsDetail was not expected"
        return self.detail(parse_qs(urlsplit(request.url).query).get("desktop_id", []))

    def _sysprep(self, request: Any) -> Any:
        assert self.sysprep is not None, "CheckSysprepInfo was not expected"
        ids = json.loads(request.body)["desktop_ids"]
        body = self.sysprep(ids)
        self.sysprep_calls.append((ids, body))
        return body

    def _job(self, request: Any) -> Any:
        job_id = urlsplit(request.url).path.rsplit("/", 1)[1]
        answers = self.jobs[job_id]
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def _publish(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.published += 1
        return 200, {}, json.dumps({"request_id": "r1", "message_id": f"msg-{self.published}"})


def truthful_detail(fleet: Sequence[Desk]) -> Answer:
    known = {d.id: d for d in fleet}

    def answer(ids: list[str]) -> Any:
        rows = [known[i].row() for i in ids if i in known]
        return {"desktops": rows, "total_count": len(rows)}

    return answer


def truthful_sysprep(fleet: Sequence[Desk]) -> Answer:
    known = {d.id: d for d in fleet}

    def answer(ids: list[str]) -> Any:
        # Workspace knows its desktops by their ids; it is not asked to guess what a mangled one meant.
        return {"sysprep_infos": [known[i.lower()].info() for i in ids if i.lower() in known]}

    return answer


# Reference readers: what an answer documents, read by its documented types only ---------------------------------

_STR = (str, type(None))


def documented_page(body: Any) -> list[str] | None:
    """The desktop ids a ListDesktops page documents, or None when the page is not of the documented shape (wrong
    types, desktop ids that are not UUIDs, a negative total)."""
    if not isinstance(body, dict) or not isinstance(body.get("desktops"), list):
        return None
    total = body.get("total_count")
    if total is not None and (type(total) is not int or total < 0):
        return None
    ids = []
    for row in body["desktops"]:
        if not isinstance(row, dict) or not isinstance(row.get("desktop_id"), str):
            return None
        if not ANY_CASE_ID.fullmatch(row["desktop_id"]):
            return None
        if any(not isinstance(row.get(k), _STR) for k in ("computer_name", "user_name", "status", "task_status")):
            return None
        ids.append(row["desktop_id"].lower())
    return ids


@dataclass(frozen=True)
class JobView:
    status: Any
    subs: list[tuple[Any, Any]]  # (status, desktop id) of each sub-job


def documented_job(body: Any) -> JobView | None:
    """ShowJobResponse read by its documented types; None when the answer is not of that shape."""
    if not isinstance(body, dict):
        return None
    if any(not isinstance(body.get(k), _STR) for k in ("id", "status", "job_error_code", "fail_reason")):
        return None
    subs = body.get("sub_jobs", [])
    if not isinstance(subs, list):
        return None
    out = []
    for sub in subs:
        if not isinstance(sub, dict):
            return None
        if any(not isinstance(sub.get(k), _STR) for k in ("id", "status", "error_code", "fail_reason")):
            return None
        entities = sub.get("entities")
        if entities is not None and not isinstance(entities, dict):
            return None
        entities = entities or {}
        if any(not isinstance(entities.get(k), _STR) for k in ("desktop_id", "desktop_name", "user_name")):
            return None
        out.append((sub.get("status"), entities.get("desktop_id")))
    return JobView(body.get("status"), out)


def job_expectation(answers: Sequence[Any]) -> set[int] | None:
    """How many desktops a job's answers set out to be checked, polled as a handler polls (until SUCCESS or FAILED;
    the last answer repeats): the distinct desktops its last answer names in sub-jobs that did not fail, plus its
    unfailed sub-jobs that name none. Two readings are accepted, since the answer's own text decides between them:
    statuses and ids as sent, or statuses compared case-insensitively and ids stripped and lower-cased (" success",
    "failed", " 7C9E...\n"). None when an answer polled is not of the documented shape: the desktops are then
    unknown, and only an incomplete run is truthful."""
    views = [documented_job(body) for body in answers]
    counts = set()
    for fold in (False, True):
        status = (lambda s: s.upper() if isinstance(s, str) else "") if fold else (lambda s: s)
        ident = (lambda d: d.strip().lower()) if fold else (lambda d: d)
        last = None
        for view in views:
            last = view
            if view is None or status(view.status) in ("SUCCESS", "FAILED"):
                break
        if last is None:  # on this reading, the polls reach an answer not of the documented shape
            continue
        named: set[str] = set()
        nameless = 0
        for sub_status, desktop in last.subs:
            if status(sub_status) == "FAILED":
                continue
            normal = ident(desktop) if isinstance(desktop, str) else ""
            if ANY_CASE_ID.fullmatch(normal):
                named.add(normal.lower())
            else:
                nameless += 1
        counts.add(len(named) + nameless)
    return counts or None


def _passes(entry: dict[str, Any]) -> bool:
    """An entry that shows the desktop compliant, in the documented types: a version string at or above the
    minimum, and JSON true for each required capability."""
    version = entry.get("sysprep_version")
    if not isinstance(version, str) or not version.strip():
        return False
    parsed = parse_version(version)
    return (
        parsed is not None
        and parsed >= MIN_VERSION
        and entry.get("support_hibernate") is True
        and entry.get("support_update_route") is True
    )


def evidence(calls: Sequence[tuple[list[str], Any]]) -> tuple[set[str], set[str], set[str]]:
    """From the CheckSysprepInfo calls made: (ids asked, ids an answer showed compliant with no entry against,
    ids whose entries in one answer conflict)."""
    asked: set[str] = set()
    shown: set[str] = set()
    conflicting: set[str] = set()
    for ids, body in calls:
        entries = body.get("sysprep_infos") if isinstance(body, dict) else None
        entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
        for desktop in ids:
            key = desktop.lower()
            asked.add(key)
            mine = [e for e in entries if isinstance(e.get("desktop_id"), str) and e["desktop_id"].lower() == key]
            verdicts = {_passes(e) for e in mine}
            if verdicts == {True}:
                shown.add(key)
            elif verdicts == {True, False}:
                conflicting.add(key)
    return asked, shown - conflicting, conflicting


# The invariants ------------------------------------------------------------------------------------------------


def run_handler(invoke: Callable[..., Any], clock: FakeClock, event: Any, timeout: float) -> dict[str, Any] | None:
    """The handler's summary, or None when it raised one of the project's own errors; anything else propagates.
    Either way it finishes within its time on the fake clock."""
    index._services = None  # a cold start for every example: each has its own cloud
    start = clock.t
    try:
        summary = invoke(event, timeout=timeout, **POLICY)
    except GuardError:
        summary = None
    took = clock.t - start
    assert took <= timeout, f"took {took:.1f} s of a {timeout} s budget on the fake clock"
    return summary


def totals(summary: dict[str, Any]) -> tuple[int, int]:
    """(non-compliant, unchecked) totals: from `counts` when the summary has them, else the lists' lengths."""
    counts = summary.get("counts")
    if isinstance(counts, dict):
        return counts["non_compliant"], counts["unchecked"]
    return len(summary["non_compliant"]), len(summary["unchecked"])


def check(
    summary: dict[str, Any] | None,
    cloud: MockCloud,
    expected: int | set[int] | None,
    set_out: Sequence[str] | None = None,
    must_be_incomplete: bool = False,
) -> None:
    """The invariants of a run.

    `expected`: how many desktops it set out to check, or the counts each right on one reading of the answers (None:
    the answers do not say). `set_out`: their ids, when known, each accounted for by id as well as by number.
    `must_be_incomplete`: the answers never said which desktops there are, so only an incomplete run is truthful."""
    assert not cloud.mock_errors, f"the test's mock failed: {cloud.mock_errors[0]!r}"
    if summary is None:  # one of the project's own errors: allowed
        return
    size = len(json.dumps(summary).encode())
    assert size < SUMMARY_MAX_BYTES, f"summary of {size:,} bytes, over FunctionGraph's 6 MB"

    non_compliant, unchecked = totals(summary)
    incomplete = summary["incomplete"] is True
    assert summary["checked"] == summary["compliant"] + non_compliant, "checked != compliant + non_compliant"
    if must_be_incomplete:
        assert incomplete, "no answer said which desktops there are, yet the run claims to be complete"

    reported = [e["desktop_id"].lower() for e in [*summary["non_compliant"], *summary["unchecked"]]]
    seen: set[str] = set()
    twice = sorted({d for d in reported if d in seen or seen.add(d)})
    assert not twice, f"{len(twice)} desktops reported twice: {twice[:3]}"

    if expected is not None and not incomplete:
        right = {expected} if isinstance(expected, int) else expected
        assert summary["checked"] + unchecked in right, (
            f"{summary['checked']} checked + {unchecked} unchecked != {expected} set out, and not incomplete"
        )
    asked, shown, conflicting = evidence(cloud.sysprep_calls)
    if set_out is not None and not incomplete:
        accounted = asked | set(reported)
        missing = sorted(d for d in set_out if d.lower() not in accounted)
        assert not missing, f"desktops neither checked nor reported, and not incomplete: {missing}"

    assert summary["compliant"] <= len(shown), (
        f"{summary['compliant']} compliant, but answers showed only {len(shown)} desktops compliant"
    )
    # By id, when every desktop is listed and the run claims completeness (a desktop asked about and reported
    # nowhere was then counted compliant):
    listed_whole = len(summary["non_compliant"]) == non_compliant and len(summary["unchecked"]) == unchecked
    if listed_whole and not incomplete:
        unshown = sorted(asked - shown - conflicting - set(reported))
        assert not unshown, f"compliant with no answer showing it: {unshown}"
        disputed = sorted(conflicting - set(reported))
        assert not disputed, f"compliant although the answer's entries for it conflict: {disputed}"
