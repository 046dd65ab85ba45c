"""`tertulia content lint` reports every problem with its file and line, and exits non-zero."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tertulia.cli import main
from tertulia.programs.content.lint import lint

BUNDLED = Path(__file__).resolve().parents[2] / "content" / "guy-talk" / "es-PE"


@pytest.fixture
def copy(tmp_path: Path, mini_path: Path) -> Path:
    target = tmp_path / "mini" / "es-PE"
    shutil.copytree(mini_path, target)
    return target


def messages(root: Path) -> list[str]:
    return [f"{Path(p.path).name}:{p.line}: {p.message}" for p in lint(root).problems]


def test_the_bundled_curriculum_is_clean() -> None:
    result = lint(BUNDLED)
    assert result.problems == []
    assert result.spec is not None
    assert [d.number for d in result.spec.days] == list(range(0, 31))


def test_the_bundled_curriculum_has_the_daily_shape() -> None:
    """From day 1 on, each day has one challenge, one check-in and one discussion prompt;
    about six days per topic; day 0 tells how to stop and where to get help."""
    spec = lint(BUNDLED).spec
    assert spec is not None
    topics: dict[str, int] = {}
    for day in spec.days[1:]:
        kinds = [s.kind for s in day.steps]
        assert kinds.count("challenge") == 1, day.number
        assert kinds.count("checkin") == 1, day.number
        assert kinds.count("discussion") == 1, day.number
        topics[day.topic] = topics.get(day.topic, 0) + 1
    assert set(topics) == {"communication", "emotions", "consent", "finances", "home"}
    assert all(n == 6 for n in topics.values())
    welcome = " ".join(s.text + s.script for s in spec.days[0].steps)
    assert "BAJA" in welcome
    assert "Línea 100" in welcome
    audio = [s for d in spec.days for s in d.steps if s.kind == "audio"]
    assert audio and all(s.media_mime == "audio/ogg" for s in audio)


def test_a_clean_folder_passes_with_a_version(copy: Path) -> None:
    result = lint(copy)
    assert result.ok
    assert result.spec is not None and len(result.spec.version) == 12


def test_every_problem_is_reported_with_file_and_line(copy: Path) -> None:
    (copy / "day-02.yaml").unlink()  # missing day
    shutil.copy(copy / "day-01.yaml", copy / "day-1.yaml")  # duplicate day 1
    day3 = (copy / "day-03.yaml").read_text()
    day3 = day3.replace("topic: communication", "topic: cooking")
    day3 = day3.replace("Texto del día 3.", "x" * 4097)
    day3 = day3.replace("caption: Una tarjeta.", "caption: " + "y" * 1025)
    day3 = day3.replace("title: Casi}", "title: Casi casi casi casi casi}")
    day3 = day3.replace(
        '- {key: "no", title: Todavía no}',
        '- {key: "no", title: Todavía no}\n      - {key: otra, title: Otra}',
    )
    (copy / "day-03.yaml").write_text(day3)
    (copy / "day-01.yaml").write_text(
        (copy / "day-01.yaml").read_text().replace("images/card.png", "images/nope.png")
    )
    found = messages(copy)
    expected = [
        "day-02.yaml:1: missing day 2",
        "day-1.yaml:1: duplicate day 1: also in day-01.yaml",
        "day-03.yaml:2: unknown topic 'cooking' (known: communication, emotions, welcome)",
        "day-03.yaml:6: text is 4097 characters; WhatsApp allows 4,096",
        "day-03.yaml:9: caption is 1025 characters; WhatsApp allows 1,024",
        "day-03.yaml:15: 4 buttons; WhatsApp allows at most 3",
        "day-03.yaml:17: button title 'Casi casi casi casi casi' is 24 characters; "
        "WhatsApp allows 20",
        "day-01.yaml:8: missing media file 'images/nope.png'",
    ]
    for line in expected:
        assert line in found, f"{line!r} not in {found}"


def test_media_whatsapp_refuses_is_reported(copy: Path) -> None:
    (copy / "audio" / "vorbis.ogg").write_bytes(b"OggS" + b"\0" * 24 + b"\x01vorbis" + b"\0" * 64)
    (copy / "audio" / "voz.wav").write_bytes(b"RIFF0000WAVE")
    with (copy / "images" / "big.png").open("wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(6 * 1024 * 1024)
    day0 = (copy / "day-00.yaml").read_text().replace("audio/hola.ogg", "audio/vorbis.ogg")
    day0 = day0.replace(
        "  - type: checkin",
        "  - type: audio\n    file: audio/voz.wav\n"
        "  - type: image\n    file: images/big.png\n    caption: grande\n"
        "  - type: checkin",
    )
    (copy / "day-00.yaml").write_text(day0)
    found = "\n".join(messages(copy))
    assert "Ogg but not Opus" in found
    assert "WhatsApp does not accept audio as '.wav'" in found
    assert "'images/big.png' is 6.0 MB; WhatsApp accepts image up to 5 MB" in found


def test_yaml_booleans_as_button_keys_are_explained(copy: Path) -> None:
    path = copy / "day-01.yaml"
    path.write_text(path.read_text().replace('{key: "no",', "{key: no,"))
    assert 'day-01.yaml:18: button key was read as true/false; quote it, e.g. key: "no"' in (
        messages(copy)
    )


def test_a_yaml_syntax_error_names_its_line(copy: Path) -> None:
    (copy / "day-02.yaml").write_text("day: 2\ntopic: [unclosed\n")
    assert any(m.startswith("day-02.yaml:3: YAML syntax") for m in messages(copy))


def test_the_cli_prints_problems_and_exits_1(copy: Path) -> None:
    (copy / "day-02.yaml").unlink()
    result = CliRunner().invoke(main, ["content", "lint", str(copy)])
    assert result.exit_code == 1
    assert f"{copy}/day-02.yaml:1: missing day 2" in result.output


def test_the_cli_says_ok_for_a_clean_folder(copy: Path) -> None:
    result = CliRunner().invoke(main, ["content", "lint", str(copy)])
    assert result.exit_code == 0
    assert result.output.startswith("OK: 4 days, 18 steps, version ")
