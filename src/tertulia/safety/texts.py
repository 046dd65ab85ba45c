"""What triage says to the man who wrote: caring, never blaming, Spanish of Peru first.

The reply goes to him alone, on his own channel; never to a partner. It opens with the most
urgent category's words, then lists the referrals that fit (from the country's directory)."""

from __future__ import annotations

OPENINGS: dict[str, dict[str, str]] = {
    "es": {
        "self_harm": (
            "Gracias por contarnos cómo te sientes, pata. No estás solo y lo que sientes "
            "importa. 💙 Si estás pensando en hacerte daño, habla ahora con alguien que sabe "
            "escuchar; es gratis y reservado:"
        ),
        "threat_to_partner": (
            "Gracias por escribirnos. Se nota que estás pasando un momento muy fuerte, y "
            "pedir apoyo es de valientes. 🤝 Si sientes que puedes perder el control, aléjate "
            "un momento, respira hondo tres veces y llama. Te atienden gratis y con reserva:"
        ),
        "violence_disclosure": (
            "Gracias por tu confianza al contarnos esto. Reconocerlo es un primer paso muy "
            "importante, y no tienes que hacerlo solo. 🤝 Aquí te pueden orientar, gratis y "
            "con reserva:"
        ),
        "child_at_risk": (
            "Gracias por escribirnos. Cuidar a los niños es tarea de todos y pedir ayuda es lo "
            "correcto. 🤝 Aquí te orientan, gratis y con reserva:"
        ),
        "harassment": (
            "Hola 👋 Tu mensaje quedó en pausa hasta que lo vea tu facilitador. En la "
            "comunidad cuidamos que todos puedan hablar sin ser juzgados: sin insultos, "
            "amenazas ni datos personales de nadie. ¡Gracias por ayudarnos a cuidarla!"
        ),
        "closing": "Tu facilitador recibió tu mensaje y te escribirá pronto.",
    },
    "en": {
        "self_harm": (
            "Thank you for telling us how you feel. You are not alone and what you feel "
            "matters. 💙 If you are thinking of hurting yourself, talk now to someone who "
            "knows how to listen; it is free and confidential:"
        ),
        "threat_to_partner": (
            "Thank you for writing to us. It sounds like a very hard moment, and asking for "
            "support takes courage. 🤝 If you feel you might lose control, step away, breathe "
            "deeply three times and call. It is free and confidential:"
        ),
        "violence_disclosure": (
            "Thank you for trusting us with this. Recognising it is an important first step, "
            "and you don't have to do it alone. 🤝 These services can guide you, free and "
            "confidential:"
        ),
        "child_at_risk": (
            "Thank you for writing to us. Keeping children safe is everyone's job and asking "
            "for help is the right thing to do. 🤝 These services can guide you, free and "
            "confidential:"
        ),
        "harassment": (
            "Hi 👋 Your message is paused until your facilitator sees it. In the community we "
            "make sure everyone can talk without being judged: no insults, threats or anyone's "
            "personal details. Thanks for helping us look after it!"
        ),
        "closing": "Your facilitator got your message and will write to you soon.",
    },
}


def opening_for(category: str, language: str) -> str:
    base = (language or "es").split("-")[0].lower()
    texts = OPENINGS.get(base, OPENINGS["es"])
    return texts.get(category) or OPENINGS["es"][category]


def closing_for(language: str) -> str:
    base = (language or "es").split("-")[0].lower()
    return OPENINGS.get(base, OPENINGS["es"])["closing"]
