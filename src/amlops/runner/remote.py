"""An http(s) input that cannot be fetched: say whether the network failed or the server said "not found".

fsspec's HTTP filesystem answers `exists()` with False for any error, a refused connection as much as a 404, so a
step input behind a dead proxy read as "not found". One request of our own tells the two apart.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from amlops.errors import UserError


def check_http_input(url: str, what: str, timeout: float = 15.0) -> None:
    """Raise UserError naming the cause when `url` cannot be downloaded; return when it can."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            raise UserError(f"{what}: {url} not found (HTTP {exc.code})") from None
        # Anything else (a signed URL refusing HEAD, 403 on HEAD only, 405): the download itself will tell.
        return
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(
            f"{what}: cannot reach {url} (network: {reason}); check the connection or proxy, or pass a local "
            f"copy with --set"
        ) from None
