"""What the platform itself says to a participant, by language (Spanish of Peru first).

These are not curriculum: they answer keywords and must be the same in every program."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "es": {
        "opted_out": (
            "Listo, ya no te enviaremos más mensajes. Gracias por el tiempo que compartiste "
            "con nosotros. 🙌\n\nSi algún día quieres volver, escribe *VOLVER*.\n"
            "Si tú o alguien de tu familia necesita ayuda, la *Línea 100* atiende gratis, "
            "las 24 horas, desde cualquier teléfono."
        ),
        "help": (
            "Aquí estamos, causa. 🤝\n\n"
            "Si tú, tu pareja o alguien de tu familia está en peligro o necesita apoyo, llama "
            "gratis a la *Línea 100*: atiende las 24 horas, desde cualquier teléfono.\n\n"
            "Si quieres hablar con tu facilitador, escríbele aquí mismo y te responderá "
            "pronto.\nPara dejar de recibir mensajes, escribe *BAJA*."
        ),
        "rejoined": (
            "¡Qué bueno tenerte de vuelta, pata! 💪 Te seguimos enviando las cápsulas desde "
            "donde te quedaste. Si quieres parar otra vez, escribe *BAJA*."
        ),
        "not_enrolled": (
            "Hola 👋 Ahora no estás inscrito en un grupo. Si necesitas ayuda, la *Línea 100* "
            "atiende gratis, las 24 horas."
        ),
        "checkin_thanks": "¡Gracias por contarnos! 🙌",
    },
    "en": {
        "opted_out": (
            "Done: we won't send you any more messages. Thank you for the time you shared "
            "with us. 🙌\n\nIf you ever want to come back, write *START*.\n"
            "If you or someone in your family needs help, call your local helpline."
        ),
        "help": (
            "We're here. 🤝\n\nIf you, your partner or someone in your family is in danger or "
            "needs support, call the helpline (*Línea 100* in Peru: free, 24 hours).\n\n"
            "To talk to your facilitator, write here and he will answer soon.\n"
            "To stop receiving messages, write *STOP*."
        ),
        "rejoined": (
            "Good to have you back! 💪 We'll continue where you left off. To stop again, "
            "write *STOP*."
        ),
        "not_enrolled": "Hi 👋 You are not in a group right now.",
        "checkin_thanks": "Thanks for telling us! 🙌",
    },
}


def text_for(key: str, language: str) -> str:
    """The text `key` in `language` (e.g. "es-PE" → "es"), falling back to Spanish."""
    base = (language or "es").split("-")[0].lower()
    return TEXTS.get(base, TEXTS["es"]).get(key) or TEXTS["es"][key]
