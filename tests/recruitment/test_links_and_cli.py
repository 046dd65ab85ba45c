"""Campaigns, variants and their links, from the services and as a new user meets them in
`tertulia recruit`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from click.testing import CliRunner

from tertulia.cli import main
from tertulia.recruitment.links import utm_link, whatsapp_link
from tertulia.recruitment.services import (
    RecruitmentError,
    variant_create,
    variant_links,
    variant_prefilled_text,
)


def test_the_whatsapp_link_carries_the_number_digits_and_the_encoded_text() -> None:
    link = whatsapp_link("+51 900 000 001", "Hola, más info (HEP-AB12) & gracias")
    assert link.startswith("https://wa.me/51900000001?text=")
    encoded = link.split("text=", 1)[1]
    assert " " not in encoded and "&" not in encoded and "," not in encoded
    assert unquote(encoded) == "Hola, más info (HEP-AB12) & gracias"
    with pytest.raises(ValueError, match="has no digits"):
        whatsapp_link("ninguno", "x")


def test_utm_links_keep_other_parameters_and_replace_old_utm_ones() -> None:
    link = utm_link(
        "https://example.org/p?ref=radio&utm_source=old",
        source="facebook",
        medium="paid_social",
        campaign="lanzamiento",
        content="HEP-AB12",
    )
    query = parse_qs(urlsplit(link).query)
    assert query == {
        "ref": ["radio"],
        "utm_source": ["facebook"],
        "utm_medium": ["paid_social"],
        "utm_campaign": ["lanzamiento"],
        "utm_content": ["HEP-AB12"],
    }
    with pytest.raises(ValueError, match="is not a web address"):
        utm_link("example.org", source="a", medium="b", campaign="c", content="d")


@pytest.mark.django_db
def test_a_variant_gets_a_unique_code_and_qr_codes_of_its_link(campaign) -> None:
    campaign.landing_url = "https://example.org/patas"
    created = variant_create(campaign=campaign, name="C radio", cost="120.50")
    assert created.code.startswith("HEP-") and len(created.code) == 8
    found = variant_links(created)
    assert found.whatsapp.endswith(
        "text=Hola%2C%20quiero%20saber%20m%C3%A1s%20de%20Hablemos%20Entre%20Patas%20%28"
        + created.code
        + "%29"
    )
    assert created.code in variant_prefilled_text(created)
    assert "utm_content=" + created.code in found.landing
    assert found.qr_png.startswith(b"\x89PNG\r\n\x1a\n")
    assert found.qr_svg.lstrip().startswith("<svg")
    with pytest.raises(RecruitmentError, match="already used by another variant"):
        variant_create(campaign=campaign, name="D", code=created.code)
    with pytest.raises(RecruitmentError, match="must look like HEP-7K3Q"):
        variant_create(campaign=campaign, name="E", code="hola mundo")
    with pytest.raises(RecruitmentError, match="is negative"):
        variant_create(campaign=campaign, name="F", cost="-5")


@pytest.mark.django_db(transaction=True)
def test_the_cli_creates_a_campaign_and_variants_and_writes_their_links(
    program, tmp_path: Path
) -> None:
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(main, ["recruit", *args])
        assert result.exit_code == 0, result.output
        return result.output

    create = ["recruit", "campaign", "create", "--name", "X", "--channel", "facebook"]
    missing = runner.invoke(main, [*create, "--program", "nope", "--number", "+5190"])
    assert missing.exit_code == 1
    assert "no program 'nope' (known: guy-talk)" in missing.output
    bad_number = runner.invoke(main, [*create, "--program", "guy-talk", "--number", "12"])
    assert "'12' is not a WhatsApp number" in bad_number.output

    run("campaign", "create", "--program", "guy-talk", "--name", "Lanzamiento",
        "--channel", "Facebook", "--number", "+51 900 000 001",
        "--landing-url", "https://example.org/patas")  # fmt: skip
    assert "HEP-TEST" in run("variant", "add", "--campaign", "Lanzamiento", "--name", "A",
                             "--cost", "300", "--code", "hep-test")  # fmt: skip
    bad_cost = runner.invoke(main, ["recruit", "variant", "add", "--campaign", "Lanzamiento",
                                    "--name", "B", "--cost", "mucho"])  # fmt: skip
    assert "cost 'mucho' is not an amount" in bad_cost.output
    assert "HEP-TEST  A  300.00 PEN" in run("campaign", "list")

    output = run("links", "--out", str(tmp_path))
    assert "WhatsApp: https://wa.me/51900000001?text=" in output
    assert "utm_source=facebook" in output
    assert (tmp_path / "HEP-TEST.png").read_bytes().startswith(b"\x89PNG")
    assert "<svg" in (tmp_path / "HEP-TEST.svg").read_text()
