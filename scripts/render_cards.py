"""Render the curriculum's illustrated technique cards (PNG, 1080x1080) with Pillow.

Usage: python scripts/render_cards.py [OUT_DIR]   (default: content/guy-talk/es-PE/images)

Each card is a title, a short subtitle and 2-4 numbered lines of one technique, so a man can
save it on his phone and look at it in the moment he needs it. The card text lives here, not
in the day files, because it is a design asset: the day's caption carries the message.

Cards use DejaVu Sans (Debian `fonts-dejavu-core`), found with fc-match, because it is on
almost every Linux machine and covers Spanish punctuation (¿ ¡ « » …).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = 1080
MARGIN = 80
# Warm, high-contrast palette: dark brown text on cream reads well in sunlight on a cheap
# phone screen; each card gets its own accent so they are easy to tell apart in a gallery.
CREAM = (255, 246, 233)
INK = (61, 44, 46)
WHITE = (255, 255, 255)
TERRACOTTA = (200, 85, 61)
MUSTARD = (191, 116, 24)
CORAL = (212, 88, 68)
OLIVE = (122, 132, 62)
PLUM = (138, 72, 92)
TEAL = (42, 122, 120)
FOOTER = "Hablemos Entre Patas"
MAX_BYTES = 300_000

FALLBACK_FONTS = {
    True: "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    False: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
}


@dataclass(frozen=True)
class Card:
    file: str
    title: str
    subtitle: str
    lines: tuple[str, ...]
    accent: tuple[int, int, int]
    note: str = ""


CARDS: tuple[Card, ...] = (
    Card(
        "day-03-respiraciones.png",
        "3 respiraciones",
        "antes de reaccionar",
        (
            "Toma aire por la nariz, contando hasta 4",
            "Bótalo lento por la boca, contando hasta 6",
            "Repite tres veces",
        ),
        TERRACOTTA,
    ),
    Card(
        "day-04-yo-me-siento.png",
        "Yo me siento… cuando…",
        "habla de ti, sin atacar",
        (
            "Yo me siento… (lo\u00a0que\u00a0sientes)",
            "cuando… (lo que pasó)",
            "y necesito… (lo que pides)",
        ),
        MUSTARD,
    ),
    Card(
        "day-05-pido-un-tiempo.png",
        "Pido un tiempo",
        "cuando la cólera sube",
        (
            "Usa la señal que acordaron",
            "Sal a caminar y respira",
            "Sin trago y sin manejar",
            "Vuelve antes de una hora",
        ),
        CORAL,
    ),
    Card(
        "day-09-presupuesto.png",
        "El presupuesto del mes",
        "juntos, con números",
        (
            "Lo que entra",
            "Lo fijo: alquiler, luz, colegio",
            "Lo variable: comida, salidas",
            "El ahorro: ¡se\u00a0separa\u00a0primero!",
        ),
        OLIVE,
    ),
    Card(
        "day-17-reparar.png",
        "Reparar en 3 pasos",
        "después de una pelea",
        (
            "Cálmate primero",
            "Reconoce tu parte: «lo\u00a0siento», sin\u00a0«pero»",
            "Pregunta: «¿qué necesitas?»",
        ),
        PLUM,
    ),
    Card(
        "day-27-pelear-limpio.png",
        "Pelear limpio",
        "que nadie salga herido",
        (
            "Un tema a la vez",
            "Habla de ti: «yo me siento…»",
            "Escucha y repite antes\u00a0de\u00a0responder",
            "Si sube: pido\u00a0un\u00a0tiempo,\u00a0y\u00a0vuelvo",
        ),
        TEAL,
    ),
    Card(
        "day-30-caja-de-herramientas.png",
        "Tu caja de herramientas",
        "lo que practicaste en 30 días",
        (
            "3 respiraciones",
            "Pido un tiempo",
            "Yo me siento… cuando…",
            "Escuchar y repetir",
        ),
        TERRACOTTA,
        note="Línea 100: gratis, 24 horas",
    ),
)


def find_font(bold: bool) -> str:
    """Locate DejaVu Sans via fontconfig, falling back to its usual Debian path."""
    if shutil.which("fc-match"):
        pattern = "DejaVu Sans:bold" if bold else "DejaVu Sans"
        found = subprocess.run(
            ["fc-match", "-f", "%{file}", pattern], capture_output=True, text=True, check=False
        ).stdout.strip()
        if found.endswith(".ttf") and "DejaVu" in found and Path(found).exists():
            return found
    path = FALLBACK_FONTS[bold]
    if not Path(path).exists():
        raise SystemExit("DejaVu Sans not found: apt-get install -y fonts-dejavu-core")
    return path


def wrap(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int
) -> list[str]:
    """Greedy word wrap by rendered width (character counts lie with proportional fonts)."""
    lines: list[str] = []
    current = ""
    # Split on plain spaces only: a no-break space (\u00a0) in card text keeps words together.
    for word in text.split(" "):
        candidate = f"{current} {word}".strip()
        if draw.textlength(candidate, font=font) <= width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


def fit(
    draw: ImageDraw.ImageDraw, text: str, path: str, size: int, width: int, max_lines: int
) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """Largest font size (down from `size`) at which `text` wraps into `max_lines` lines."""
    while True:
        font = ImageFont.truetype(path, size)
        lines = wrap(draw, text, font, width)
        widest = max(draw.textlength(line, font=font) for line in lines)
        if (len(lines) <= max_lines and widest <= width) or size <= 28:
            return font, lines
        size -= 2


def line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return int((ascent + descent) * 1.15)


def render(card: Card, out_dir: Path, bold: str, regular: str) -> Path:
    img = Image.new("RGB", (SIZE, SIZE), CREAM)
    draw = ImageDraw.Draw(img)
    inner = SIZE - 2 * MARGIN

    # Title: one line if it fits at a large size, else two lines; the accent header band
    # grows to hold it so a long title never crowds the subtitle.
    title_font, title_lines = fit(draw, card.title, bold, 92, inner, 1)
    if title_font.size < 68:
        title_font, title_lines = fit(draw, card.title, bold, 76, inner, 2)
    sub_font = ImageFont.truetype(regular, 44)
    th = line_height(title_font)
    block = th * len(title_lines) + 16 + line_height(sub_font)
    band_h = max(330, block + 130)
    draw.rectangle((0, 0, SIZE, band_h), fill=card.accent)
    # One soft circle, clipped by the corner, as a light touch of illustration.
    soft = tuple(min(255, c + 22) for c in card.accent)
    draw.ellipse((SIZE - 230, -130, SIZE + 130, 230), fill=soft)
    y = (band_h - block) // 2 + 6
    for line in title_lines:
        draw.text((MARGIN, y), line, font=title_font, fill=WHITE)
        y += th
    draw.text((MARGIN, y + 16), card.subtitle, font=sub_font, fill=WHITE)

    # Numbered technique lines: a filled accent circle with the number, then wrapped text.
    bullet = 76
    text_x = MARGIN + bullet + 34
    text_w = SIZE - MARGIN - text_x
    footer_top = SIZE - 150 if card.note else SIZE - 110
    body_top = band_h + 50
    size = 54
    while True:
        body_font = ImageFont.truetype(regular, size)
        wrapped = [wrap(draw, line, body_font, text_w) for line in card.lines]
        lh = line_height(body_font)
        gap = 40
        total = sum(max(len(w) * lh, bullet) for w in wrapped) + gap * (len(wrapped) - 1)
        if body_top + total <= footer_top - 30 or size <= 34:
            break
        size -= 2
    y = body_top + max(0, (footer_top - 30 - body_top - total) // 2)
    num_font = ImageFont.truetype(bold, 44)
    for number, lines in enumerate(wrapped, start=1):
        draw.ellipse((MARGIN, y, MARGIN + bullet, y + bullet), fill=card.accent)
        draw.text(
            (MARGIN + bullet / 2, y + bullet / 2),
            str(number),
            font=num_font,
            fill=WHITE,
            anchor="mm",
        )
        text_h = len(lines) * lh
        ty = y + max(0, (bullet - text_h) // 2) + 4
        for line in lines:
            draw.text((text_x, ty), line, font=body_font, fill=INK)
            ty += lh
        y += max(text_h, bullet) + gap

    # Footer: the program name, and the hotline where the card carries one.
    draw.line((MARGIN, footer_top, SIZE - MARGIN, footer_top), fill=card.accent, width=4)
    foot_font = ImageFont.truetype(bold, 36)
    fy = footer_top + 26
    if card.note:
        draw.text((MARGIN, fy), card.note, font=foot_font, fill=INK)
        fy += 48
    draw.text((MARGIN, fy), FOOTER, font=ImageFont.truetype(regular, 32), fill=card.accent)

    out = out_dir / card.file
    # A 64-colour palette keeps flat-colour cards far under WhatsApp's limits and our 300 KB
    # budget, so they download fast on prepaid data, with no visible loss on text edges.
    img.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    if out.stat().st_size > MAX_BYTES:
        raise SystemExit(f"{out} is {out.stat().st_size} bytes, over {MAX_BYTES}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "out_dir", type=Path, nargs="?", default=Path("content/guy-talk/es-PE/images")
    )
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    bold, regular = find_font(bold=True), find_font(bold=False)
    for card in CARDS:
        out = render(card, args.out_dir, bold, regular)
        print(f"{out} ({out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
