"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi run`."""

from portal.app import create_app

app = create_app()
