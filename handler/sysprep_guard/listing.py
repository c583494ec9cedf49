"""A sweep's desktops: every desktop of the project, page by page, reconciled with the count Workspace gives.

ListDesktops pages by offset. Desktops come and go while a sweep reads, and an answer can be short, repeat rows,
ignore the offset or misstate its count. So pages are stepped by the limit asked for; a page with fewer desktops
than its own count implies is asked for once more; a desktop is counted once however often it comes; a page that
repeats the previous one stops the listing; a full last page is followed by another read. At the end the
desktops accounted for are compared with the latest count: fewer, and the sweep says it is incomplete, and how
many were never listed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import ApiError
from .logs import log
from .models import Desktop, DesktopPage
from .workspace import LIST_PAGE

if TYPE_CHECKING:
    from .orchestrator import Run

MAX_PAGES = 10_000  # ten million desktops: past that, a listing that never ends is a misbehaving one


def sweep(run: Run) -> Iterator[Desktop]:
    listing = _Listing(run)
    run.listed = lambda desktop_id: _key(desktop_id) in listing.seen  # for the history: fixed, or gone
    yield from listing.desktops()


def _key(desktop_id: str) -> int:
    return int(desktop_id.replace("-", ""), 16)  # a UUID as an int: the smallest way to remember it


class _Listing:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.workspace = run.workspace
        self.seen: set[int] = set()  # every desktop accounted for, judged or set aside
        self.count: int | None = None  # total_count of the last page read
        self.rejected = 0  # rows without a valid desktop id
        self.failed_at_once = False

    def desktops(self) -> Iterator[Desktop]:
        previous: set[int] = set()
        with contextlib.closing(self._pages()) as pages:
            for offset, page in pages:
                keys = {_key(d.desktop_id) for d in page.desktops}
                if keys and keys == previous:
                    self.run.fail(
                        f"ListDesktops answered offset {offset:,} with the desktops of the page before it: it ignores "
                        f"the offset, and the listing stopped after {len(self.seen):,} desktops",
                        "listing",
                    )
                    break
                previous = keys
                yield from self._take(page)
        self._reconcile()

    def _take(self, page: DesktopPage) -> Iterator[Desktop]:
        if page.total_count is not None:
            self.count = page.total_count
        self.rejected += page.rejected
        for desktop in page.desktops:
            key = _key(desktop.desktop_id)
            if key in self.seen:  # on two pages (offsets shift as desktops come and go), or twice on one
                continue
            self.seen.add(key)
            yield desktop.with_id(desktop.desktop_id.lower())  # a busy one too: judging.ready sets it apart

    def _pages(self) -> Iterator[tuple[int, DesktopPage]]:
        """The first page alone (it gives the count); then the pages that count announces, fetched a few ahead;
        then, one after another, more while the last page was full or a later count says there are more."""
        try:
            last = self._whole(0, self.workspace.list_page(0))
        except ApiError as exc:
            self.failed_at_once = True
            self.run.stop(exc)
            self.run.fail(f"listing desktops failed: {exc}", "listing")
            return
        yield 0, last
        offset = 0
        if last.total_count is not None:
            offsets = range(LIST_PAGE, last.total_count, LIST_PAGE)
            for offset, future in zip(offsets, self.run.ahead(self.workspace.list_page, offsets), strict=False):
                try:
                    last = self._whole(offset, future.result())
                except ApiError as exc:
                    if self._stops(offset, exc):
                        return
                    continue
                yield offset, last
        for _ in range(MAX_PAGES):
            full = len(last.desktops) + last.rejected >= LIST_PAGE
            offset += LIST_PAGE
            if not (full or (self.count or 0) > offset):
                return
            try:
                last = self._whole(offset, self.workspace.list_page(offset))
            except ApiError as exc:
                self._stops(offset, exc)
                return
            if not last.desktops and not last.rejected:
                return
            yield offset, last

    def _whole(self, offset: int, page: DesktopPage) -> DesktopPage:
        """The page, asked for once more when it holds fewer desktops than its own count implies."""
        if page.total_count is None:
            return page
        expected = min(LIST_PAGE, page.total_count - offset)
        distinct = len({_key(d.desktop_id) for d in page.desktops})
        if distinct >= expected:
            return page
        log.warning("a short page; asked for again", offset=offset, desktops=distinct, expected=expected)
        try:
            again = self.workspace.list_page(offset)
        except ApiError:
            return page
        return again if len({_key(d.desktop_id) for d in again.desktops}) > distinct else page

    def _stops(self, offset: int, exc: ApiError) -> bool:
        """A page failed for good: the listing goes on without it, unless the run must stop."""
        if self.run.stop(exc):
            return True
        self.run.fail(f"ListDesktops at offset {offset:,}: {exc}", "listing")
        return False

    def _reconcile(self) -> None:
        summary = self.run.summary
        if self.rejected:
            self.run.fail(f"{self.rejected:,} listed rows had no valid desktop id and were left out", "listing")
        if self.failed_at_once:
            summary.unlisted = None  # unknown: no count came
            return
        if self.count is None:  # ListDesktops documents total_count: without one, nothing says the listing is whole
            summary.unlisted = None
            self.run.fail(
                f"ListDesktops gave no total_count: the {len(self.seen):,} desktops listed (until a short page) "
                "cannot be checked against it",
                "listing",
            )
            return
        missing = (self.count or 0) - len(self.seen)
        if missing > 0:
            summary.unlisted = missing
            self.run.fail(
                f"listed {len(self.seen):,} of the {self.count:,} desktops ListDesktops counts: {missing:,} were "
                "never listed",
                "listing",
            )
