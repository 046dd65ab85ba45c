"""Recruitment: from an ad to a man ready for randomization.

This app owns campaigns and ad variants (click-to-WhatsApp links, QR codes, UTM links), the
attribution of a first message to a variant (by its code or by WhatsApp's ad referral), the
screening conversation configured per program in `content/<program>/recruitment/<locale>/
screening.yaml`, informed consent (versioned, by button), the separate partner-contact store and
the guard that keeps her number from ever being messaged, the chat baseline, and withdrawal.

It listens to the router's `inbound_routed` (after safety triage, before the community relay) and
ends with the man "ready for randomization": `services.randomization_inputs()` gives his strata
and the `signals.baseline_completed` signal tells the randomization app.
"""
