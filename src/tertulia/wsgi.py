"""WSGI entry point for a production server (gunicorn, uWSGI)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tertulia.settings")
application = get_wsgi_application()
