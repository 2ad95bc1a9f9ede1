"""Where a request's media bytes come from — the server's security boundary.

A client names media as a base64 payload, a ``data:`` URL, a local path (only under the server's
media root: no traversal, no symlink escape) or an http(s) URL (only on the configured allowlist,
no redirects, bounded in bytes and time). Everything else is refused with a 4xx before any byte is
decoded.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from omnibind.modalities.base import Limits
from omnibind.serve.errors import APIError, bad, json_type
from omnibind.serve.settings import ServeSettings

MIME_FORMATS = {
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "audio/webm": "webm",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "video/x-matroska": "mkv",
    "video/x-msvideo": "avi",
    "text/csv": "csv",
    "application/x-npy": "npy",
}
"""MIME types of ``data:`` URLs → the file-type name the loaders use."""

FORMAT_RE = re.compile(r"^[a-z0-9]{1,8}$")
"""A file-type name a client may send (``wav``, ``png``...): short, lower-case, no dots."""


def decode_base64(data: Any, where: str, limits: Limits) -> bytes:
    """Strict base64 → bytes, refusing oversized payloads before decoding them."""
    if not isinstance(data, str):
        raise bad(f"{where}: expected a base64 string, got {json_type(data)}", where)
    if len(data) * 3 // 4 > limits.max_file_bytes + 3:
        raise APIError(
            413,
            f"{where}: payload of ~{len(data) * 3 // 4} bytes exceeds the limit of {limits.max_file_bytes} bytes",
            param=where,
            code="payload_too_large",
        )
    compact = re.sub(r"\s+", "", data)
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as e:
        raise bad(f"{where}: invalid base64 data ({e})", where, "invalid_base64") from None
    if not raw:
        raise bad(f"{where}: empty media payload", where)
    return raw


def parse_data_url(url: str, where: str, limits: Limits) -> tuple[bytes, str | None]:
    """``data:<mime>;base64,<payload>`` → (bytes, format from the mime type or None to sniff)."""
    head, sep, payload = url.partition(",")
    if not sep:
        raise bad(f"{where}: malformed data URL (no comma)", where, "invalid_url")
    meta = head[5:].split(";")
    if "base64" not in [m.strip().lower() for m in meta[1:]]:
        raise bad(f"{where}: only base64 data URLs are supported (data:<mime>;base64,...)", where, "invalid_url")
    mime = meta[0].strip().lower()
    fmt = MIME_FORMATS.get(mime)
    if fmt is None and "/" in mime:
        sub = mime.split("/", 1)[1].removeprefix("x-")
        fmt = sub if FORMAT_RE.match(sub) and sub != "octet-stream" else None
    return decode_base64(payload, where, limits), fmt


def resolve_local(path_text: str, where: str, settings: ServeSettings) -> Path:
    """A client-named local file, only inside ``settings.media_root`` (no traversal, no symlink escape)."""
    root = settings.media_root
    if root is None:
        raise APIError(
            403,
            f"{where}: local file paths are disabled on this server (start it with --media-root to allow a folder)",
            type="permission_error",
            param=where,
            code="local_paths_disabled",
        )
    if "\x00" in path_text:
        raise bad(f"{where}: path contains a NUL byte", where, "invalid_path")
    p = Path(path_text)
    full = (p if p.is_absolute() else root / p).resolve()
    if not full.is_relative_to(root):
        raise APIError(
            403,
            f"{where}: path {path_text!r} is outside the server's media root",
            type="permission_error",
            param=where,
            code="path_outside_root",
        )
    if not full.is_file():
        raise APIError(404, f"{where}: no such file {path_text!r} under the media root", param=where, code="not_found")
    return full


def url_allowed(url: str, allowlist: list[str]) -> bool:
    """True when ``url`` starts with an allowlisted prefix, compared on parsed parts (no userinfo tricks)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or "@" in u.netloc or not u.hostname:
        return False
    for prefix in allowlist:
        a = urllib.parse.urlsplit(prefix)
        if (u.scheme, u.netloc.lower()) == (a.scheme, a.netloc.lower()) and u.path.startswith(a.path or "/"):
            if ".." not in u.path.split("/"):
                return True
    return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead off the allowlist, so none is followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch_remote(url: str, where: str, settings: ServeSettings) -> bytes:
    """Download an allowlisted URL, bounded in bytes and time."""
    limit = settings.limits.max_file_bytes
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(url, timeout=settings.fetch_timeout_s) as resp:  # allowlisted http(s) only
            if resp.status != 200:
                raise bad(f"{where}: fetching {url} gave HTTP {resp.status}", where, "fetch_failed")
            data = resp.read(limit + 1)
    except APIError:
        raise
    except Exception as e:  # urllib raises many types (HTTPError, URLError, timeouts)
        raise bad(f"{where}: could not fetch {url}: {e}", where, "fetch_failed") from None
    if len(data) > limit:
        raise APIError(413, f"{where}: {url} is larger than {limit} bytes", param=where, code="payload_too_large")
    if not data:
        raise bad(f"{where}: {url} returned no data", where, "fetch_failed")
    return data


def source_from_url(url: Any, where: str, settings: ServeSettings) -> tuple[Any, str | None]:
    """A url field → (path or bytes, format hint)."""
    if not isinstance(url, str) or not url:
        raise bad(f"{where}: expected a non-empty URL string, got {json_type(url)}", where)
    low = url[:16].lower()
    if low.startswith("data:"):
        return parse_data_url(url, where, settings.limits)
    if low.startswith(("http://", "https://")):
        if not url_allowed(url, settings.url_allowlist):
            raise APIError(
                403,
                f"{where}: remote URLs are not fetched by this server; send the media inline as a base64 data URL"
                + (" (this URL is not on the allowlist)" if settings.url_allowlist else ""),
                type="permission_error",
                param=where,
                code="remote_url_refused",
            )
        return fetch_remote(url, where, settings), _ext(urllib.parse.urlsplit(url).path)
    if low.startswith("file://"):
        parsed = urllib.parse.urlsplit(url)
        if parsed.netloc not in ("", "localhost"):
            raise bad(f"{where}: file URLs must name a local path", where, "invalid_url")
        return str(resolve_local(urllib.parse.unquote(parsed.path), where, settings)), None
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        raise bad(f"{where}: unsupported URL scheme in {url[:40]!r}", where, "invalid_url")
    return str(resolve_local(url, where, settings)), None


def _ext(path: str) -> str | None:
    ext = Path(path).suffix.lower().lstrip(".")
    return ext if FORMAT_RE.match(ext or "-") else None
