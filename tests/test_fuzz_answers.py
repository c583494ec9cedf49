"""Hostile answers: arbitrary JSON and mutated real answers from ListDesktops, ListDesktopsDetail, CheckSysprepInfo
and ShowJob, each run end to end through `index.handler` against a cloud mocked with `responses` and a fake clock.

Whatever Workspace answers, the handler either returns a summary that keeps the report's invariants, or raises
one of the project's own errors (GuardError). The invariants (fuzz_answers_support.check):

- every desktop set out to be checked (the truthful fleet for a sweep, the ids asked for in a manual event, the
  desktops a job names) is accounted for, checked + unchecked equals their number, or the run says `incomplete`;
  by id too, where the ids are known: each was asked about in CheckSysprepInfo or is reported;
- checked == compliant + non-compliant, and no desktop is reported twice (ids compared case-insensitively);
- no desktop is compliant unless a CheckSysprepInfo answer showed it so in the documented types (a version
  string at or above the minimum, JSON true for each required capability), with no entry of that answer against;
- the summary's JSON is under 6 MB, and the run ends within its time on the fake clock.

SMN answers truthfully throughout. Examples are derandomised (the same ones on every run) and no example database is
written; a failure prints its minimal example and a blob for @reproduce_failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import responses
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import FakeClock
from fuzz_answers_support import (
    BUSY_TASKS,
    DEEP,
    FIELD_VALUES,
    HUGE,
    ID_VARIANTS,
    IDLE_TASKS,
    JOB_ID,
    JSON,
    KEYS,
    NOT_A_DICT,
    NOT_A_LIST,
    NOT_A_STRING,
    SCALARS,
    Append,
    Conflict,
    DeleteField,
    DeleteKey,
    Desk,
    Drop,
    Duplicate,
    ManyRows,
    MockCloud,
    Reorder,
    ReplaceBody,
    ReplaceRow,
    SetField,
    SetId,
    SetKey,
    apply_body_plan,
    apply_plan,
    arbitrary_answer,
    check,
    desks,
    documented_page,
    job_expectation,
    run_handler,
    stranger_id,
    truthful_detail,
    truthful_sysprep,
    weighted,
)

FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure today is a failure tomorrow
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no explain phase: it triples a failure's cost
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ_MORE = settings(FUZZ, max_examples=150)  # for the properties whose examples are cheap (ShowJob)
TIMEOUT = 900.0
IDX = st.integers(0, 200)
OTHER_KEY = st.text(min_size=1, max_size=8).filter(lambda k: k not in {"desktops", "total_count", "sysprep_infos"})
Invoke = Callable[..., Any]


class _Formatted(logging.Handler):
    """Formats each record as production does (so a line that cannot be written still fails), keeps nothing."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


class Harness:
    """What every example runs with: the handler (the agency's fake keys, the fake clock) and a fresh mocked cloud.
    A plain class with a short repr, so that a falsifying example shows the case, not the fixtures."""

    def __init__(self, invoke: Invoke, clock: FakeClock, cloud: responses.RequestsMock, quiet: logging.Handler):
        self.invoke, self.clock, self.cloud, self.quiet = invoke, clock, cloud, quiet

    def __repr__(self) -> str:
        return "Harness()"

    def new_cloud(self) -> MockCloud:
        """The `cloud` fixture's registry cleared and filled again. The handler's log lines are formatted but not
        kept (set here, not at setup: pytest attaches its capture to the logger in each phase)."""
        logging.getLogger("sysprep_guard").handlers = [self.quiet]
        self.clock.sleeps.clear()
        mock = MockCloud(clock=self.clock)
        mock.register(self.cloud)
        return mock

    def run(self, event: Any, timeout: float = 900.0) -> dict[str, Any] | None:
        return run_handler(self.invoke, self.clock, event, timeout)


@pytest.fixture
def harness(invoke: Invoke, clock: FakeClock, cloud: responses.RequestsMock) -> Iterator[Harness]:
    logger = logging.getLogger("sysprep_guard")
    own = [h for h in logger.handlers if type(h).__module__ == "sysprep_guard.logs"]
    quiet = _Formatted()
    quiet.setFormatter(own[0].formatter if own else None)
    yield Harness(invoke, clock, cloud, quiet)
    logger.handlers = own


# ListDesktops, during a TIMER sweep ------------------------------------------------------------------------------

TIMER = {"trigger_type": "TIMER", "time": "2026-11-28T02:00:00+08:00", "trigger_name": "nightly-sysprep-sweep"}
ROW_FIELDS = ["desktop_id", "computer_name", "user_name", "status", "task_status"]
TASKS = st.one_of(
    st.sampled_from([*BUSY_TASKS, *(t for t in IDLE_TASKS if t is not None), "SPAWNING", " spawning ", "DELETEFAILED"]),
    st.text(max_size=12),
)


@dataclass(frozen=True)
class Total:
    """What a page says its total_count is, given the truthful count."""

    kind: str
    k: int = 1

    def apply(self, body: dict[str, Any], truth: int) -> None:
        values: dict[str, Any] = {
            "truthful": truth,
            "null": None,
            "negative": -self.k,
            "string": str(truth),
            "string_garbage": "many",
            "too_high": truth + self.k,
            "too_low": max(0, truth - self.k),
            "float": float(truth),
            "float_frac": truth + 0.5,
            "bool": True,
            "huge": 10**30,
        }
        if self.kind == "missing":
            body.pop("total_count", None)
        else:
            body["total_count"] = values[self.kind]


TOTAL_KINDS = ["truthful", "missing", "null", "negative", "string", "string_garbage", "too_high", "too_low"]
TOTAL_KINDS += ["float", "float_frac", "bool", "huge"]
# Well-typed totals that would hide a missing row or a page never fetched: a lie no handler can see.
TOTALS_THAT_HIDE = {"missing", "null", "too_low"}


@dataclass(frozen=True)
class PageOp:
    """A mutation of one page of the listing (page number `page`, counted in pages of the served size)."""

    page: int
    op: Any


@dataclass
class Listing:
    fleet: list[Desk]
    page_size: int
    plan: list[Any] = field(default_factory=list)  # mutations of the listing's rows, all pages together
    total: Total = Total("truthful")
    page_ops: list[PageOp] = field(default_factory=list)
    first_page: Any = None  # in the arbitrary property: the answer at offset 0
    rest: Any = None  # ...and, when that answer documents the whole fleet, the answer at every other offset

    def serve(self) -> Callable[[int, int], Any]:
        rows = apply_plan([d.row() for d in self.fleet], self.plan)
        size = self.page_size

        def page(offset: int, limit: int) -> Any:
            if offset == 0 and self.first_page is not None:
                return self.first_page
            if offset > 0 and self.rest is not None:
                return self.rest
            body: Any = {"total_count": 0, "desktops": rows[offset : offset + min(size, limit)]}
            self.total.apply(body, len(self.fleet))
            for page_op in self.page_ops:
                if page_op.page == offset // size:
                    body = page_op.op.apply_body(body)
            return body

        return page


def hidden(fleet: list[Desk], rows: list[Any]) -> bool:
    """Whether some truthful desktop no longer has a row that names it."""
    named = {r["desktop_id"].lower() for r in rows if isinstance(r, dict) and isinstance(r.get("desktop_id"), str)}
    return any(d.id not in named for d in fleet)


LISTING_ROW_OPS = st.one_of(
    st.builds(Drop, IDX),
    st.builds(Duplicate, IDX, IDX),
    st.builds(Reorder, st.integers(0, 2**16)),
    st.builds(SetField, IDX, st.sampled_from(ROW_FIELDS), FIELD_VALUES),
    st.builds(SetField, IDX, st.just("task_status"), TASKS),
    st.builds(SetField, IDX, st.sampled_from(["computer_name", "user_name"]), HUGE),
    st.builds(DeleteField, IDX, st.sampled_from(ROW_FIELDS)),
    st.builds(SetField, IDX, OTHER_KEY, JSON),  # extra fields
    st.builds(SetId, IDX, st.sampled_from(ID_VARIANTS)),
)
LISTING_PAGE_OPS = st.builds(
    PageOp,
    st.integers(0, 3),
    st.one_of(
        st.builds(SetKey, st.just("desktops"), NOT_A_LIST),
        st.builds(DeleteKey, st.just("desktops")),
        st.builds(ReplaceBody, NOT_A_DICT),
        st.builds(SetKey, OTHER_KEY, JSON),
    ),
)


@st.composite
def listings_with_mutated_rows(draw: st.DrawFn) -> Listing:
    fleet = list(draw(desks(range(1, draw(st.integers(0, 6)) + 1))))
    listing = Listing(fleet, page_size=draw(st.sampled_from([1000, 2, 3])))
    listing.plan = draw(st.lists(LISTING_ROW_OPS, min_size=1, max_size=4))
    listing.total = Total(draw(st.sampled_from(["truthful", "too_high"])), draw(st.sampled_from([1, 3])))
    listing.page_ops = draw(st.lists(LISTING_PAGE_OPS, max_size=1))
    return listing


@st.composite
def listings_with_mutated_counts(draw: st.DrawFn) -> Listing:
    fleet = list(draw(desks(range(1, draw(st.integers(0, 6)) + 1))))
    listing = Listing(fleet, page_size=draw(st.sampled_from([1000, 2, 3])))
    # Rows as they are, or with a change that hides none of them (or, sometimes, one that does).
    listing.plan = draw(st.lists(st.one_of(st.builds(Reorder, st.integers(0, 2**16)), LISTING_ROW_OPS), max_size=1))
    rows = apply_plan([d.row() for d in fleet], listing.plan)
    kinds = list(TOTAL_KINDS)
    if hidden(fleet, rows) or len(rows) > listing.page_size:
        # A row is gone, or pages are shorter than asked for (a short page reads as the last one): only the total
        # can say that more desktops exist, so it is never one that hides them too.
        kinds = [k for k in kinds if k not in TOTALS_THAT_HIDE]
    listing.total = Total(draw(st.sampled_from(kinds)), draw(st.sampled_from([1, 3, 500])))
    return listing


def run_sweep(harness: Harness, mock: MockCloud, listing: Listing) -> dict[str, Any] | None:
    mock.list_page = listing.serve()
    mock.sysprep = truthful_sysprep(listing.fleet)
    return harness.run(TIMER, TIMEOUT)


@FUZZ
@given(listing=listings_with_mutated_rows())
def test_sweep_accounts_for_the_fleet_whatever_the_listing_rows(harness, listing) -> None:
    """ListDesktops rows mutated (total_count truthful, or too high): rows dropped, duplicated, reordered; fields
    of the wrong type; huge strings; desktop_id missing, empty, not a UUID, with a trailing newline, upper case or
    huge; arbitrary task_status; extra fields; a page whose `desktops` is missing or not a list, or that is not an
    object. The truthful fleet is accounted for, by number and by id, or the run says it is incomplete.

    The listing is served consistently: its pages are slices of the same mutated rows, 1,000 to a page, or 2 or 3
    whatever the limit asked."""
    mock = harness.new_cloud()
    summary = run_sweep(harness, mock, listing)
    check(summary, mock, expected=len(listing.fleet), set_out=[d.id for d in listing.fleet])


@FUZZ
@given(listing=listings_with_mutated_counts())
def test_sweep_accounts_for_the_fleet_whatever_the_total_count(harness, listing) -> None:
    """ListDesktops' total_count mutated: missing, null, negative, a string, too high (by up to 500, or 10**30),
    too low, a float, a boolean; with the rows as they are, reordered, or (sometimes) mutated as above. The truthful
    fleet is accounted for, by number and by id, or the run says it is incomplete; a total that overstates the
    fleet never keeps the sweep past its time.

    A hidden row, or pages shorter than asked for, never come with a well-typed total that hides them too
    (missing, null or too low): such a listing documents a smaller fleet, a lie no handler could see. A total of
    the wrong type (negative, a string, a float, a boolean) is no such lie: it says the answer is broken."""
    mock = harness.new_cloud()
    summary = run_sweep(harness, mock, listing)
    check(summary, mock, expected=len(listing.fleet), set_out=[d.id for d in listing.fleet])


LISTING_ROW_KEYS = ["desktop_id", "computer_name", "user_name", "status", "task_status"]


@st.composite
def arbitrary_listings(draw: st.DrawFn) -> Listing:
    fleet = list(draw(desks(range(1, draw(st.integers(0, 3)) + 1))))
    return Listing(fleet, page_size=1000, first_page=draw(arbitrary_answer(LISTING_ROW_KEYS, "desktops")))


@FUZZ
@given(listing=arbitrary_listings())
def test_sweep_whose_first_page_is_arbitrary_json(harness, listing) -> None:
    """ListDesktops' first page is arbitrary JSON (later pages are the truthful fleet's). When that page is of the
    documented shape, the desktops it names (or its total_count, if larger) are what the sweep sets out to check;
    when it is not, the truthful fleet is, and only an incomplete run may fall short of it."""
    mock = harness.new_cloud()
    documented = documented_page(listing.first_page)
    if documented is None:
        expected, set_out = len(listing.fleet), [d.id for d in listing.fleet]
    else:  # the answer is the truth: later pages agree with it, and list nothing more
        set_out = sorted(set(documented))
        total = listing.first_page.get("total_count")
        expected = max(len(set_out), total or 0)
        listing.rest = {"desktops": [], "total_count": total}
    summary = run_sweep(harness, mock, listing)
    check(summary, mock, expected=expected, set_out=set_out)


# ListDesktopsDetail, for a manual event ---------------------------------------------------------------------------


@dataclass
class Detail:
    fleet: list[Desk]  # the desktops that exist, of those asked
    asked: list[str]
    plan: list[Any] = field(default_factory=list)
    arbitrary: Any = None  # in the arbitrary property: every answer

    def serve(self) -> Callable[[list[str]], Any]:
        truthful = truthful_detail(self.fleet)

        def answer(ids: list[str]) -> Any:
            if self.arbitrary is not None:
                return self.arbitrary
            body = truthful(ids)
            body["desktops"] = apply_plan(body["desktops"], self.plan)
            return apply_body_plan(body, self.plan)

        return answer


ASKED = st.sampled_from([1, 2, 3, 5, 101])


@st.composite
def asked_fleet(draw: st.DrawFn, busy: bool = True, compliant: bool = False) -> tuple[list[str], list[Desk]]:
    count = draw(ASKED)
    fleet = list(draw(desks(range(1, count + 1), busy=busy, compliant=compliant)))
    gone = draw(st.sets(st.integers(1, count), max_size=2))  # asked, but Workspace has no such desktop
    return [d.id for d in fleet], [d for d in fleet if d.n not in gone]


DETAIL_ROW_OPS = st.one_of(
    st.builds(Drop, IDX),
    st.builds(Duplicate, IDX, IDX),
    st.builds(Conflict, IDX, st.just("task_status"), st.sampled_from([*BUSY_TASKS, "", None]), IDX),
    st.builds(Reorder, st.integers(0, 2**16)),
    st.builds(SetField, IDX, st.sampled_from(ROW_FIELDS), FIELD_VALUES),
    st.builds(SetField, IDX, st.just("task_status"), TASKS),
    st.builds(DeleteField, IDX, st.sampled_from(ROW_FIELDS)),
    st.builds(SetField, IDX, OTHER_KEY, JSON),
    st.builds(SetId, IDX, st.sampled_from(ID_VARIANTS)),
    st.builds(ReplaceRow, IDX, NOT_A_DICT),
    st.builds(  # rows for desktops not asked for
        Append,
        st.one_of(
            st.builds(lambda n, t: {"desktop_id": stranger_id(n), "task_status": t}, st.integers(0, 9), TASKS),
            st.dictionaries(KEYS, SCALARS, max_size=4),
        ),
    ),
)
DETAIL_BODY_OPS = st.one_of(
    st.builds(SetKey, st.just("desktops"), NOT_A_LIST),
    st.builds(DeleteKey, st.just("desktops")),
    st.builds(SetKey, st.just("total_count"), st.one_of(NOT_A_STRING, st.text(max_size=5))),
    st.builds(ReplaceBody, NOT_A_DICT),
    st.builds(SetKey, OTHER_KEY, JSON),
)


@st.composite
def mutated_details(draw: st.DrawFn) -> Detail:
    asked, fleet = draw(asked_fleet())
    plan = draw(st.lists(weighted((3, DETAIL_ROW_OPS), (1, DETAIL_BODY_OPS)), max_size=4))
    return Detail(fleet, asked, plan)


def run_manual(harness: Harness, asked: list[str]) -> dict[str, Any] | None:
    return harness.run({"desktop_ids": asked}, TIMEOUT)


@FUZZ
@given(case=mutated_details())
def test_manual_check_accounts_for_every_id_whatever_the_detail_rows(harness, case) -> None:
    """ListDesktopsDetail answers mutated: rows for desktops not asked for, rows missing, duplicated (and conflicting
    on task_status), reordered, of the wrong type, with bad or huge ids; `desktops` not a list; total_count of
    the wrong type. Every id the event asks for is accounted for, or the run says it is incomplete."""
    mock = harness.new_cloud()
    mock.detail = case.serve()
    mock.sysprep = truthful_sysprep(case.fleet)
    summary = run_manual(harness, case.asked)
    check(summary, mock, expected=len(case.asked), set_out=case.asked)


@st.composite
def arbitrary_details(draw: st.DrawFn) -> Detail:
    asked, fleet = draw(asked_fleet())
    return Detail(fleet, asked, arbitrary=draw(arbitrary_answer(LISTING_ROW_KEYS, "desktops")))


@FUZZ
@given(case=arbitrary_details())
def test_manual_check_whose_detail_answers_are_arbitrary_json(harness, case) -> None:
    """Every ListDesktopsDetail answer is arbitrary JSON. Every id the event asks for is accounted for, or the run
    says it is incomplete, and none is compliant without a CheckSysprepInfo answer showing it so."""
    mock = harness.new_cloud()
    mock.detail = case.serve()
    mock.sysprep = truthful_sysprep(case.fleet)
    summary = run_manual(harness, case.asked)
    check(summary, mock, expected=len(case.asked), set_out=case.asked)


# CheckSysprepInfo, for a manual event -----------------------------------------------------------------------------

INFO_FIELDS = ["desktop_id", "sysprep_version", "support_hibernate", "support_update_route"]
FLAGS = ["support_hibernate", "support_update_route"]
ODD_VERSIONS = st.one_of(
    st.sampled_from(
        [
            "3.0.10",
            "3.1.2",
            " 3.0.10",
            "3.0.10\n",
            "v3.0.10",
            "V3.0.10",
            "3.0.10.0",
            "3.0.010",
            "03.0.10",
            "3.0.10-beta",
            "3..10",
            "3.0.",
            ".3.0.10",
            "3,0,10",
            "３.０.１０",
            "٣.٠.١٠",
            "99999999999.0",
            "1e3",
            "3.0.10\x00",
            "",
            " ",
            "null",
            "latest",
            "9" * 50,
            "3.0.10.0.0.0.0.0.0",
            "3.1",
            "4",
            "2.9.99",
        ]
    ),
    st.text(max_size=12),
    st.sampled_from([3.1, 310, 3, True, None, ["3.0.10"], {"version": "3.0.10"}]),
    HUGE,
)
BOOLISH = st.one_of(
    st.sampled_from(["true", "True", "TRUE", "yes", "1", "on", "t", "y", " true", "false", "0", "no", ""]),
    st.sampled_from([1, 0, 1.0, 2, None, [True], {"value": True}, True, False]),
)


@dataclass
class Sysprep:
    fleet: list[Desk]
    asked: list[str]
    plan: list[Any] = field(default_factory=list)
    arbitrary: Any = None

    def serve(self) -> Callable[[list[str]], Any]:
        truthful = truthful_sysprep(self.fleet)

        def answer(ids: list[str]) -> Any:
            if self.arbitrary is not None:
                return self.arbitrary
            body = truthful(ids)
            body["sysprep_infos"] = apply_plan(body["sysprep_infos"], self.plan)
            return apply_body_plan(body, self.plan)

        return answer


SYSPREP_ROW_OPS = st.one_of(
    st.builds(Drop, IDX),
    st.builds(Duplicate, IDX, IDX),
    st.builds(Conflict, IDX, st.just("sysprep_version"), ODD_VERSIONS, IDX),
    st.builds(Conflict, IDX, st.sampled_from(FLAGS), BOOLISH, IDX),
    st.builds(Reorder, st.integers(0, 2**16)),
    st.builds(SetField, IDX, st.just("sysprep_version"), ODD_VERSIONS),
    st.builds(SetField, IDX, st.sampled_from(FLAGS), BOOLISH),  # booleans as strings, numbers, ...
    st.builds(SetField, IDX, st.sampled_from(INFO_FIELDS), FIELD_VALUES),
    st.builds(DeleteField, IDX, st.sampled_from(INFO_FIELDS)),
    st.builds(SetField, IDX, OTHER_KEY, JSON),
    st.builds(SetId, IDX, st.sampled_from(ID_VARIANTS)),
    st.builds(ReplaceRow, IDX, NOT_A_DICT),
    st.builds(  # entries for other desktops, compliant ones included
        Append,
        st.one_of(
            st.builds(
                lambda n, v, h, r: {
                    "desktop_id": stranger_id(n),
                    "sysprep_version": v,
                    "support_hibernate": h,
                    "support_update_route": r,
                },
                st.integers(0, 9),
                ODD_VERSIONS,
                BOOLISH,
                BOOLISH,
            ),
            st.dictionaries(st.one_of(st.sampled_from(INFO_FIELDS), KEYS), SCALARS, max_size=4),
        ),
    ),
)
SYSPREP_BODY_OPS = st.one_of(
    st.builds(SetKey, st.just("sysprep_infos"), st.one_of(NOT_A_LIST, DEEP)),
    st.builds(DeleteKey, st.just("sysprep_infos")),
    st.builds(ReplaceBody, NOT_A_DICT),
    st.builds(SetKey, OTHER_KEY, JSON),
)


@st.composite
def mutated_sysprep(draw: st.DrawFn) -> Sysprep:
    asked, fleet = draw(asked_fleet(busy=False, compliant=True))
    plan = draw(st.lists(weighted((3, SYSPREP_ROW_OPS), (1, SYSPREP_BODY_OPS)), max_size=4))
    return Sysprep(fleet, asked, plan)


@FUZZ
@given(case=mutated_sysprep())
def test_sysprep_answers_never_make_a_desktop_compliant_without_evidence(harness, case) -> None:
    """CheckSysprepInfo answers mutated: entries for other desktops, duplicated and conflicting entries, versions of
    every odd kind, booleans as strings or numbers, fields missing or of the wrong type, sysprep_infos not a list.
    Every id asked for is accounted for (or the run is incomplete), and a desktop is compliant only when the
    answer's entries for it all show it so in the documented types."""
    mock = harness.new_cloud()
    mock.detail = truthful_detail(case.fleet)
    mock.sysprep = case.serve()
    summary = run_manual(harness, case.asked)
    check(summary, mock, expected=len(case.asked), set_out=case.asked)


SYSPREP_ROW_KEYS = INFO_FIELDS


@st.composite
def arbitrary_sysprep(draw: st.DrawFn) -> Sysprep:
    asked, fleet = draw(asked_fleet(busy=False, compliant=True))
    return Sysprep(fleet, asked, arbitrary=draw(arbitrary_answer(SYSPREP_ROW_KEYS, "sysprep_infos")))


@FUZZ
@given(case=arbitrary_sysprep())
def test_sysprep_answers_that_are_arbitrary_json(harness, case) -> None:
    """Every CheckSysprepInfo answer is arbitrary JSON. Those desktops are unchecked or non-compliant, never
    compliant, unless the answer happens to show one compliant in the documented types; every id is accounted for."""
    mock = harness.new_cloud()
    mock.detail = truthful_detail(case.fleet)
    mock.sysprep = case.serve()
    summary = run_manual(harness, case.asked)
    check(summary, mock, expected=len(case.asked), set_out=case.asked)


# ShowJob, for a CTS trace of createDesktops -------------------------------------------------------------------------

CTS = {
    "cts": {
        "service_type": "Workspace",
        "resource_type": "workspace",
        "trace_name": "createDesktops",
        "trace_rating": "normal",
        "code": "200",
        "request": "",
        "response": '{"job_id": "' + JOB_ID + '"}',
    }
}
STATUS_TEXT = st.one_of(
    st.sampled_from(
        [
            "SUCCESS",
            "FAILED",
            "RUNNING",
            "WAITING",
            "success",
            "Failed",
            "",
            " SUCCESS",
            "SUCCEEDED",
            "ERROR",
            "ſuccess",
        ]
    ),
    st.text(max_size=10),
)
STATUSES = st.one_of(STATUS_TEXT, NOT_A_STRING, st.none())
ENTITY_ID = ("entities", "desktop_id")


def base_job(fleet: list[Desk], statuses: list[str]) -> dict[str, Any]:
    """The truthful job: SUCCESS, FAILED or RUNNING as its sub-jobs are (`statuses`, one per desktop)."""
    status = "RUNNING" if "RUNNING" in statuses else "FAILED" if "FAILED" in statuses else "SUCCESS"
    return {
        "id": JOB_ID,
        "job_type": "CREATE_DESKTOP",
        "status": status,
        "sub_jobs_total": len(fleet),
        "sub_jobs": [
            {"id": f"sub-{d.n}", "status": s, "entities": {"desktop_id": d.id, "desktop_name": f"desk-{d.n}"}}
            for d, s in zip(fleet, statuses, strict=True)
        ],
    }


@dataclass
class JobCase:
    fleet: list[Desk]  # the desktops the job makes, as Workspace lists them
    timeout: float
    plans: list[list[Any]] = field(default_factory=list)  # one per poll's answer; the last repeats
    statuses: list[str] = field(default_factory=list)  # of the truthful job's sub-jobs
    arbitrary: list[Any] | None = None

    def answers(self) -> list[Any]:
        if self.arbitrary is not None:
            return list(self.arbitrary)
        out = []
        for plan in self.plans:
            body = base_job(self.fleet, self.statuses)
            body["sub_jobs"] = apply_plan(body["sub_jobs"], plan)
            out.append(apply_body_plan(body, plan))
        return out


# Changes that keep the answer of the documented shape (so that the handler must make sense of it) ...
JOB_SHAPED_OPS = st.one_of(
    st.builds(Drop, IDX),
    st.builds(Duplicate, IDX, IDX),  # a desktop named by two sub-jobs
    st.builds(Conflict, IDX, st.just("status"), STATUS_TEXT, IDX),  # ... that disagree on how it went
    st.builds(Reorder, st.integers(0, 2**16)),
    st.builds(SetField, IDX, st.just("status"), STATUS_TEXT),
    st.builds(SetField, IDX, st.just("status"), st.none()),
    st.builds(SetField, IDX, st.just("entities"), st.one_of(st.none(), st.just({}))),
    st.builds(DeleteField, IDX, st.just("entities")),
    st.builds(SetId, IDX, st.sampled_from([v for v in ID_VARIANTS if v != "number"]), st.just(ENTITY_ID)),
    st.builds(ManyRows, st.sampled_from([500, 1_000]), st.just("copies"), IDX, st.just(ENTITY_ID)),  # huge lists
    st.builds(ManyRows, st.just(120), st.just("distinct"), IDX, st.just(ENTITY_ID)),
    st.builds(SetKey, st.just("status"), STATUS_TEXT),
    st.builds(SetKey, OTHER_KEY, JSON),
)
# ... and changes that break it.
JOB_BROKEN_OPS = st.one_of(
    st.builds(SetField, IDX, st.just("status"), NOT_A_STRING),
    st.builds(SetField, IDX, st.just("entities"), st.one_of(NOT_A_DICT, JSON)),
    st.builds(SetField, IDX, st.sampled_from(["id", "error_code", "fail_reason"]), FIELD_VALUES),
    st.builds(SetId, IDX, st.just("number"), st.just(ENTITY_ID)),
    st.builds(ReplaceRow, IDX, NOT_A_DICT),
    st.builds(Append, st.dictionaries(st.sampled_from(["id", "status", "entities"]), JSON, max_size=3)),
    st.builds(SetKey, st.just("status"), NOT_A_STRING),
    st.builds(DeleteKey, st.sampled_from(["status", "sub_jobs"])),
    st.builds(SetKey, st.just("sub_jobs"), st.one_of(NOT_A_LIST, DEEP)),
    st.builds(SetKey, st.sampled_from(["id", "job_error_code", "fail_reason"]), FIELD_VALUES),
    st.builds(ReplaceBody, NOT_A_DICT),
)
JOB_OPS = weighted((5, JOB_SHAPED_OPS), (1, JOB_BROKEN_OPS))


@st.composite
def mutated_jobs(draw: st.DrawFn) -> JobCase:
    fleet = list(draw(desks(range(1, draw(st.integers(0, 4)) + 1))))
    statuses = draw(
        st.lists(st.sampled_from(["SUCCESS", "RUNNING", "RUNNING", "FAILED"]), min_size=len(fleet), max_size=len(fleet))
    )
    plans = draw(st.lists(st.lists(JOB_OPS, max_size=3), min_size=1, max_size=3))
    return JobCase(fleet, draw(st.sampled_from([TIMEOUT, 60.0])), plans, statuses)


def run_job(harness: Harness, case: JobCase) -> None:
    mock = harness.new_cloud()
    answers = case.answers()
    expectation = job_expectation(answers)
    mock.jobs[JOB_ID] = list(answers)
    mock.detail = truthful_detail(case.fleet)
    mock.sysprep = truthful_sysprep(case.fleet)
    summary = harness.run(CTS, case.timeout)
    if expectation is None:
        check(summary, mock, expected=None, must_be_incomplete=True)
    else:
        check(summary, mock, expected=expectation)


@FUZZ_MORE
@given(case=mutated_jobs())
def test_job_answers_account_for_the_desktops_the_job_names(harness, case) -> None:
    """ShowJob answers mutated, poll by poll: statuses arbitrary (job and sub-jobs, conflicting sub-jobs), sub_jobs
    with entities missing or garbage, desktop ids that are not UUIDs (or are, after a trailing newline), huge lists
    of sub-jobs, fields of the wrong type, sub_jobs not a list. The desktops the job's last answer names in sub-jobs
    that did not fail (and its unnamed unfailed sub-jobs) are accounted for, or the run is incomplete; an answer
    that is not of the documented shape leaves only an incomplete run truthful. The wait stays within the budget."""
    run_job(harness, case)


JOB_ROW = st.fixed_dictionaries(
    {},
    optional={
        "status": STATUSES,
        "entities": st.one_of(SCALARS, st.dictionaries(st.sampled_from(["desktop_id", "desktop_name", "x"]), SCALARS)),
        "id": SCALARS,
    },
)
ARBITRARY_JOB = st.one_of(
    JSON,
    st.fixed_dictionaries({"sub_jobs": st.lists(JOB_ROW, max_size=4)}, optional={"status": STATUSES, "id": SCALARS}),
    DEEP,
)


@st.composite
def arbitrary_jobs(draw: st.DrawFn) -> JobCase:
    fleet = list(draw(desks(range(1, draw(st.integers(0, 2)) + 1))))
    answers = draw(st.lists(ARBITRARY_JOB, min_size=1, max_size=3))
    return JobCase(fleet, draw(st.sampled_from([TIMEOUT, 60.0])), arbitrary=answers)


@FUZZ_MORE
@given(case=arbitrary_jobs())
def test_job_answers_that_are_arbitrary_json(harness, case) -> None:
    """Every ShowJob answer (one to three, the last repeated) is arbitrary JSON. The desktops a documented answer
    names are accounted for; an undocumented one leaves only an incomplete run (or a GuardError) truthful."""
    run_job(harness, case)
