"""`tertulia safety classify` answers every input line with one JSON line, in order."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tertulia.cli import main


def run(stdin: bytes | str, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(main, ["safety", "classify", *args], input=stdin)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout_bytes.decode("utf-8").splitlines()]


def test_one_json_object_per_line_in_order() -> None:
    lines = ["la voy a matar", "", "me muero de risa", "ya no quiero vivir 😞", "hola patas"]
    out = run("\n".join(lines) + "\n")
    assert [record["text"] for record in out] == lines
    assert [record["categories"] for record in out] == [
        ["threat_to_partner"],
        [],
        [],
        ["self_harm"],
        [],
    ]
    assert out[0]["evidence"] == [
        {
            "category": "threat_to_partner",
            "text": "la voy a matar",
            "rule": "threat.la_voy_a",
            "start": 0,
            "end": 14,
        }
    ]


def test_output_keeps_non_ascii_text() -> None:
    result = CliRunner().invoke(main, ["safety", "classify"], input="mi señora 😂\n")
    assert "señora 😂" in result.stdout_bytes.decode("utf-8")


def test_last_line_without_newline_and_crlf_are_read() -> None:
    out = run(b"la empuje\r\nya no quiero vivir")
    assert [record["text"] for record in out] == ["la empuje", "ya no quiero vivir"]
    assert out[0]["categories"] == ["violence_disclosure"]


def test_undecodable_bytes_do_not_stop_the_stream() -> None:
    out = run(b"\xff\xfe\xfa\n la voy a matar\n")
    assert len(out) == 2
    assert out[1]["categories"] == ["threat_to_partner"]


def test_unknown_classifier_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["safety", "classify", "--classifier", "nope"], input="x\n")
    assert result.exit_code == 2
    assert "unknown classifier 'nope'" in result.output


def test_evaluate_prints_a_table() -> None:
    result = CliRunner().invoke(main, ["safety", "evaluate", "tests/data/safety_holdout.jsonl"])
    assert result.exit_code == 0, result.output
    assert "| threat_to_partner |" in result.output
