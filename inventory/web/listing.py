"""Sorting and paging of the people's lists, in one place.

A list page names the columns it sorts by (`Sort`: a key for the query string, the model fields it
orders by); `listing()` reads `sort`, `page` and `per_page` from the query string and gives back the
page to show. Unknown sort keys and page sizes are ignored (the default is used), never an error: a
bookmarked address keeps working when a column goes away. The primary key is always the last
ordering field, so rows with equal values keep one order from page to page; empty values sort last
both ways.

The templates use `{% sort_header listing "key" label %}` (spd_web) for a column header and
web/_pagination.html for the pager, the page jump and the page size.
"""
from dataclasses import dataclass, field

from django.core.paginator import Page, Paginator
from django.db.models import F, QuerySet
from django.db.models.expressions import OrderBy
from django.http import HttpRequest, QueryDict

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
DESCENDING = "-"


@dataclass(frozen=True)
class Sort:
    """One sortable column: `key` in the query string (`?sort=key`, `?sort=-key` for descending),
    the fields it orders by ascending (a field may itself start with "-")."""

    key: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Listing:
    page: Page
    sort: str  # the key in effect
    descending: bool
    page_size: int
    query: QueryDict  # the request's query string: filters, sort and page size
    page_sizes: tuple[int, ...] = field(default=PAGE_SIZES)

    @property
    def sort_param(self) -> str:
        return f"{DESCENDING if self.descending else ''}{self.sort}"

    def sort_link(self, key: str) -> str:
        """The query string that sorts by `key`: ascending first, the other way round on a second click."""
        query = self.query.copy()
        query.pop("page", None)
        query["sort"] = f"{DESCENDING}{key}" if key == self.sort and not self.descending else key
        return "?" + query.urlencode()

    @property
    def kept_fields(self) -> list[tuple[str, str]]:
        """The query string but the page and its size, as (name, value) pairs: the hidden inputs of
        the form that jumps to a page or changes the page size (filters and sort are kept)."""
        return [(name, value) for name, values in self.query.lists() if name not in ("page", "per_page")
                for value in values]


def listing(
    request: HttpRequest, queryset: QuerySet, *, sorts: tuple[Sort, ...], default: str,
    default_page_size: int = DEFAULT_PAGE_SIZE,
) -> Listing:
    """The page of `queryset` the request asks for, sorted by one of `sorts` (`default`, a key with an
    optional "-", when the request names none or an unknown one)."""
    by_key = {sort.key: sort for sort in sorts}
    asked = request.GET.get("sort", "")
    descending = asked.startswith(DESCENDING)
    key = asked.removeprefix(DESCENDING)
    if key not in by_key:
        descending = default.startswith(DESCENDING)
        key = default.removeprefix(DESCENDING)
    ordering = [_order(_flip(name) if descending else name) for name in by_key[key].fields]
    ordering.append(_order("-pk" if descending else "pk"))
    size = page_size_of(request, default_page_size)
    page = Paginator(queryset.order_by(*ordering), size).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("export", None)
    return Listing(page=page, sort=key, descending=descending, page_size=size, query=query)


def page_size_of(request: HttpRequest, default: int = DEFAULT_PAGE_SIZE) -> int:
    """`per_page` when it is one of PAGE_SIZES, else `default`: no page of ten thousand rows."""
    try:
        size = int(request.GET.get("per_page", ""))
    except ValueError:
        return default
    return size if size in PAGE_SIZES else default


def _flip(name: str) -> str:
    return name[1:] if name.startswith(DESCENDING) else DESCENDING + name


def _order(name: str) -> OrderBy:
    """Empty values (no location, no expiry) last either way, on SQLite as on PostgreSQL."""
    if name.startswith(DESCENDING):
        return F(name[1:]).desc(nulls_last=True)
    return F(name).asc(nulls_last=True)
