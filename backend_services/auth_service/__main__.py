"""`python -m backend_services.auth_service`: serve on LETSCHAT_HOST:LETSCHAT_PORT."""

from __future__ import annotations

from backend_services.auth_service.app import create_app
from backend_services.core.config import AuthSettings
from backend_services.web import serve


def main() -> None:
    settings = AuthSettings()
    serve(create_app(settings), settings, service="auth", port=settings.port)


if __name__ == "__main__":
    main()
