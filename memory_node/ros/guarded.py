"""One way for a service handler to run core code: errors answer ``success=false``, never raise."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any


def guarded_call(
    res: Any,
    fn: Callable[[], Any],
    logger: Any,
    expected: tuple[type[BaseException], ...],
) -> Any:
    """Return ``fn()`` and set ``res.success``; on an error set ``res.message`` and return None.

    ``expected`` errors (a bad request, an unreadable path) answer with their own text; any other
    exception is logged with its traceback and answers "internal error: ...": a bad request must
    never kill the node.
    """
    res.success = False
    try:
        out = fn()
    except expected as err:
        res.message = str(err)
        return None
    except Exception as err:
        logger.error(traceback.format_exc())
        res.message = f"internal error: {err}"
        return None
    res.success = True
    return out
