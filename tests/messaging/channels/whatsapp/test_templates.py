"""The template registry: loaded from YAML all or nothing, with errors that name file and line,
and never a placeholder filled with something about the man."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from tertulia.messaging.channels.whatsapp.templates import (
    TemplatesInvalid,
    template_for_day,
    template_message,
    template_values,
    templates_load,
)
from tertulia.messaging.models import MessageTemplate

REGISTRY = Path(__file__).parents[4] / "content" / "guy-talk" / "whatsapp-templates.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "templates.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_bundled_registry_loads_and_maps_each_day(make_config: Any) -> None:
    config = make_config()
    report = templates_load(channel="test", path=REGISTRY)
    assert sorted(report.created) == [
        "community_digest",
        "hep_aviso",
        "hep_bienvenida",
        "hep_dia_apertura",
    ]
    assert template_for_day(config.pk, 0).name == "hep_bienvenida"
    assert template_for_day(config.pk, 7).name == "hep_dia_apertura"
    # Loading again changes nothing but says so.
    again = templates_load(channel="test", path=REGISTRY)
    assert (again.created, sorted(again.updated)) == ([], sorted(report.created))


def test_a_day_template_is_sent_with_the_days_number_and_topic(make_config, curriculum) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    templates_load(channel="test", path=REGISTRY)
    day = curriculum.days.get(number=2)
    payload = template_message(
        template_for_day(config.pk, 2),
        to="51987000001",
        values=template_values(day=day, curriculum=curriculum),
        reference="41",
    )
    assert payload["type"] == "template"
    assert payload["biz_opaque_callback_data"] == "41"
    assert payload["template"]["name"] == "hep_dia_apertura"
    assert payload["template"]["language"] == {"code": "es"}
    params = payload["template"]["components"][0]["parameters"]
    assert [p["text"] for p in params] == ["2", day.topic.label]


def test_a_personal_value_is_refused_with_the_reason(make_config: Any, tmp_path: Path) -> None:
    make_config()
    path = write(
        tmp_path,
        "templates:\n"
        "  - name: ok_one\n    category: utility\n    parameters: [day]\n"
        "  - name: hola_nombre\n    category: marketing\n    parameters: [first_name]\n",
    )
    with pytest.raises(TemplatesInvalid) as caught:
        templates_load(channel="test", path=path)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.startswith(f"{path}:7: hola_nombre: parameters: 'first_name' is about the man")
    # All or nothing: the valid template was not stored either.
    assert not MessageTemplate.objects.exists()


def test_placeholders_must_match_the_parameters(make_config: Any, tmp_path: Path) -> None:
    make_config()
    path = write(
        tmp_path,
        "templates:\n  - name: dia\n    category: utility\n    parameters: [day]\n"
        '    body: "Día {{1}}: {{2}}"\n',
    )
    with pytest.raises(TemplatesInvalid, match=r"placeholders \[1, 2\] but 1 parameter"):
        templates_load(channel="test", path=path)


def test_unknown_fields_channels_and_categories_are_named(make_config: Any, tmp_path: Path) -> None:
    with pytest.raises(TemplatesInvalid, match="no WhatsApp channel named 'test'"):
        templates_load(channel="test", path=REGISTRY)
    make_config()
    path = write(
        tmp_path,
        "templates:\n  - name: a\n    category: promo\n  - name: b\n    categry: utility\n",
    )
    with pytest.raises(TemplatesInvalid) as caught:
        templates_load(channel="test", path=path)
    text = "\n".join(caught.value.problems)
    assert f"{path}:3: a: category: " in text  # Django's own words, in the active language
    assert "'promo'" in text
    assert f"{path}:4: unknown field(s) categry" in text


def test_the_admin_form_refuses_a_pseudonym(make_config: Any) -> None:
    template = MessageTemplate(
        channel=make_config(), name="x", category="utility", parameters=["pseudonym"]
    )
    with pytest.raises(ValidationError, match="'pseudonym' is about the man"):
        template.full_clean()


def test_the_cli_loads_and_lists_a_registry(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "TERTULIA_VAR_DIR": str(tmp_path),
        "TERTULIA_WHATSAPP_TOKEN": "t",
        "TERTULIA_WHATSAPP_APP_SECRET": "s",
        "TERTULIA_WHATSAPP_VERIFY_TOKEN": "v",
    }
    env.pop("REDIS_URL", None)

    def tertulia(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tertulia.cli", *args],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    assert tertulia("channel", "add-whatsapp", "peru", "--phone-number-id", "1").returncode == 0
    loaded = tertulia("channel", "templates", "load", "peru", str(REGISTRY))
    assert loaded.returncode == 0, loaded.stderr
    assert "whatsapp:peru: 4 template(s) added, 0 updated, 0 deactivated" in loaded.stdout
    listed = tertulia("channel", "templates", "list", "peru").stdout
    assert "hep_bienvenida [es, utility] opens day 0: program" in listed
    assert "community_digest [es, utility] service: posts, group" in listed
    bad = write(tmp_path, "templates: 3\n")
    refused = tertulia("channel", "templates", "load", "peru", str(bad))
    assert refused.returncode == 1
    assert "expected a mapping with a 'templates' list" in refused.stderr


def test_staff_edit_a_template_in_the_admin(client, make_config) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "r@example.org", "pw-123456")
    client.force_login(admin)
    config = make_config()
    form = {
        "channel": config.pk,
        "name": "hep_dia",
        "language": "es",
        "category": "utility",
        "role": "day_opening",
        "day": "",
        "parameters": '["day", "topic"]',
        "body": "Día {{1}}: {{2}}",
        "active": "on",
    }
    response = client.post("/admin/messaging/messagetemplate/add/", form)
    assert response.status_code == 302, response.content[-3000:]
    assert template_for_day(config.pk, 4).parameters == ["day", "topic"]
    refused = client.post(
        "/admin/messaging/messagetemplate/add/",
        {**form, "name": "hola", "parameters": '["pseudonym"]'},
    )
    assert refused.status_code == 200
    assert "is about the man" in refused.content.decode()
