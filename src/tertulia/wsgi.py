"""WSGI entry point for a production server (gunicorn, uWSGI): Django, with the webhook POSTs
taking the fast path in front of it (messaging/channels/whatsapp/wsgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tertulia.settings")
django_application = get_wsgi_application()

from tertulia.messaging.channels.whatsapp.wsgi import webhook_fast_path  # noqa: E402 - after setup

application = webhook_fast_path(django_application)
