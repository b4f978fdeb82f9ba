"""Limit/offset pagination with bounds: `?limit=` is capped and an `?offset=` past any real table
is an empty page, not an SQL error (PostgreSQL's OFFSET is a bigint)."""
from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = 1000
    max_offset = 10**12

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), self.max_offset)
