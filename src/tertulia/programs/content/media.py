"""What WhatsApp accepts as media, by kind: formats (checked by content, not only by name)
and size limits, as documented for the Business Cloud API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024


@dataclass(frozen=True)
class MediaRule:
    mimes_by_suffix: dict[str, str]
    max_bytes: int


RULES: dict[str, MediaRule] = {
    "audio": MediaRule(
        {
            ".aac": "audio/aac",
            ".amr": "audio/amr",
            ".mp3": "audio/mpeg",
            ".m4a": "audio/mp4",
            ".ogg": "audio/ogg",
            ".opus": "audio/ogg",
        },
        16 * MB,
    ),
    "video": MediaRule({".mp4": "video/mp4", ".3gp": "video/3gpp"}, 16 * MB),
    "image": MediaRule({".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}, 5 * MB),
}


def sniff_problem(path: Path, mime: str) -> str | None:
    """Return why the file's content does not match `mime`, or None when it does."""
    with path.open("rb") as handle:
        head = handle.read(512)
    if mime == "image/png" and not head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "is not a PNG image"
    if mime == "image/jpeg" and not head.startswith(b"\xff\xd8\xff"):
        return "is not a JPEG image"
    if mime == "audio/ogg":
        if not head.startswith(b"OggS"):
            return "is not an Ogg file"
        # WhatsApp plays Ogg audio only with the Opus codec (not Vorbis).
        if b"OpusHead" not in head:
            return "is Ogg but not Opus; WhatsApp only accepts Ogg audio with the Opus codec"
    if mime in {"video/mp4", "audio/mp4", "video/3gpp"} and head[4:8] != b"ftyp":
        return "is not an MP4/3GPP container"
    return None
