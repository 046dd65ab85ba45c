"""Seed Peru's referral directory. Checked against public sources in November 2026 (MIMP,
MINSA); a program's safety lead reviews it in the admin before launch (see
docs/decisions/0024-referral-directory.md)."""

from django.db import migrations

VIOLENCE = ["threat_to_partner", "violence_disclosure", "child_at_risk"]

PERU = [
    {
        "slug": "linea-100",
        "name": "Línea 100",
        "kind": "hotline",
        "phone": "100",
        "url": "https://www.gob.pe/mimp",
        "hours": "24 horas, todos los días",
        "categories": VIOLENCE,
        "text_es": (
            "*Línea 100* (Ministerio de la Mujer): llama gratis al *100* desde cualquier "
            "teléfono, las 24 horas. Orientan a quien vive violencia y también a quien quiere "
            "dejar de ejercerla."
        ),
        "text_en": (
            "*Línea 100* (Ministry of Women): call *100* free from any phone, 24 hours. They "
            "help people living with violence and also those who want to stop using it."
        ),
        "order": 10,
    },
    {
        "slug": "chat-100",
        "name": "Chat 100",
        "kind": "chat",
        "phone": "",
        "url": "https://www.gob.pe/mimp",
        "hours": "24 horas, en línea",
        "categories": VIOLENCE,
        "text_es": (
            "*Chat 100*: si prefieres escribir, el chat en línea del Ministerio de la Mujer "
            "te orienta gratis y con reserva."
        ),
        "text_en": (
            "*Chat 100*: if you'd rather write, the Ministry of Women's online chat gives free, "
            "confidential guidance."
        ),
        "order": 20,
    },
    {
        "slug": "cem",
        "name": "Centros Emergencia Mujer (CEM)",
        "kind": "centre",
        "phone": "100",
        "url": "https://www.gob.pe/mimp",
        "hours": "En todo el país; algunos CEM atienden las 24 horas",
        "categories": VIOLENCE,
        "text_es": (
            "*Centros Emergencia Mujer (CEM)*: atención gratuita, legal, psicológica y social "
            "en todo el país. La Línea 100 te dice cuál es el más cercano."
        ),
        "text_en": (
            "*Centros Emergencia Mujer (CEM)*: free legal, psychological and social support "
            "across Peru. Línea 100 can tell you the nearest one."
        ),
        "order": 30,
    },
    {
        "slug": "linea-113-salud-mental",
        "name": "Línea 113, opción 5 (salud mental, MINSA)",
        "kind": "mental_health",
        "phone": "113",
        "url": "https://www.gob.pe/minsa",
        "hours": "24 horas, todos los días",
        "categories": ["self_harm"],
        "text_es": (
            "*Línea 113, opción 5* (salud mental del MINSA): llama gratis, las 24 horas. "
            "Te escucha un profesional."
        ),
        "text_en": (
            "*Línea 113, option 5* (MINSA mental health): call free, 24 hours. A professional "
            "will listen."
        ),
        "order": 5,
    },
]


def seed(apps, schema_editor):
    Referral = apps.get_model("safety", "Referral")
    for row in PERU:
        Referral.objects.update_or_create(
            country="PE", slug=row["slug"], defaults={k: v for k, v in row.items() if k != "slug"}
        )


def unseed(apps, schema_editor):
    Referral = apps.get_model("safety", "Referral")
    Referral.objects.filter(country="PE", slug__in=[row["slug"] for row in PERU]).delete()


class Migration(migrations.Migration):
    dependencies = [("safety", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
