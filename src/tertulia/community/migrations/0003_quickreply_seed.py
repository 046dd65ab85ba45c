"""A few warm quick replies in Peruvian Spanish, so a new facilitator has something to start
from. Edited (or switched off) in the admin; running this again adds nothing twice."""

from django.db import migrations

REPLIES = [
    (
        "Gracias por contar",
        "Gracias por contarlo, causa. Se necesita valor para hablar de esto, y aquí nadie te "
        "va a juzgar.",
    ),
    (
        "Te leo",
        "Te leo, hermano. ¿Cómo te sientes ahorita? Cuéntame con calma, estoy aquí para "
        "escucharte.",
    ),
    (
        "Respira",
        "Antes de responder, prueba esto: respira hondo tres veces y date unos minutos. "
        "Después conversamos, ¿ya?",
    ),
    (
        "Buen aporte",
        "Buen aporte, pata. Gracias por compartirlo con el grupo: seguro a más de uno le sirve.",
    ),
    (
        "Ayuda profesional",
        "Lo que cuentas es importante. Si quieres hablar con alguien ahora mismo, puedes "
        "llamar gratis a la Línea 100 o escribir al Chat 100; atienden todo el día.",
    ),
    (
        "Bienvenido",
        "Bienvenido al grupo. Aquí hablamos con respeto y sin juzgar a nadie; escribe cuando "
        "quieras.",
    ),
]


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    QuickReply = apps.get_model("community", "QuickReply")
    for order, (title, text) in enumerate(REPLIES):
        QuickReply.objects.get_or_create(
            title=title, language="es", defaults={"text": text, "order": order}
        )


def unseed(apps, schema_editor):  # type: ignore[no-untyped-def]
    QuickReply = apps.get_model("community", "QuickReply")
    QuickReply.objects.filter(title__in=[t for t, _ in REPLIES], language="es").delete()


class Migration(migrations.Migration):
    dependencies = [("community", "0002_quickreply_privatereply")]

    operations = [migrations.RunPython(seed, unseed)]
