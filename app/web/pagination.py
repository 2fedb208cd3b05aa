"""Every list page's pagination: the `page` query parameter, whatever it holds, lands on 1..last page."""
from __future__ import annotations

import sqlalchemy as sa
from flask import request
from flask_sqlalchemy.pagination import Pagination

from app.extensions import db

# Far beyond any real list, and small enough that page × per_page stays a valid SQL OFFSET.
MAX_PAGE = 1_000_000


def requested_page() -> int:
    """The `page` query parameter as 1..MAX_PAGE: anything else (missing, text, zero, negative) is page 1."""
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        return 1
    return min(max(page, 1), MAX_PAGE)


def paginate(query: sa.Select, *, per_page: int) -> Pagination:
    """One page of `query`: the requested page, or the last one when the request asks beyond it."""
    page = requested_page()
    result = db.paginate(query, page=page, per_page=per_page, max_per_page=None, error_out=False)
    if page > 1 and page > result.pages:
        result = db.paginate(query, page=max(result.pages, 1), per_page=per_page, max_per_page=None,
                             error_out=False)
    return result
