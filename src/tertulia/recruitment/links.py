"""Links and QR codes for ad variants: the click-to-WhatsApp link that opens a chat with the
variant's code already typed, its QR code (PNG and SVG, with segno), and UTM-tagged landing
links. Pure functions of their arguments."""

from __future__ import annotations

import io
import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import segno


def whatsapp_link(number: str, text: str) -> str:
    """https://wa.me/<digits>?text=<URL-encoded text>; wa.me wants the number without '+'."""
    digits = re.sub(r"\D", "", number)
    if not digits:
        raise ValueError(f"'{number}' has no digits; give the WhatsApp number, e.g. +51900000001")
    return f"https://wa.me/{digits}?text={quote(text, safe='')}"


def utm_link(url: str, *, source: str, medium: str, campaign: str, content: str) -> str:
    """`url` with utm_* parameters set (replacing any it had), keeping its other parameters."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{url}' is not a web address (https://...)")
    query = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("utm_")]
    query += [
        ("utm_source", source),
        ("utm_medium", medium),
        ("utm_campaign", campaign),
        ("utm_content", content),
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def qr_png(data: str, *, scale: int = 8) -> bytes:
    out = io.BytesIO()
    segno.make(data, error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def qr_svg(data: str, *, scale: int = 8) -> str:
    out = io.BytesIO()
    segno.make(data, error="m").save(out, kind="svg", scale=scale, border=4, xmldecl=False)
    return out.getvalue().decode("utf-8")
