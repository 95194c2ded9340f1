"""`python -m backend_services.message_service`: serve on LETSCHAT_HOST:LETSCHAT_PORT."""

from __future__ import annotations

from backend_services.core.config import MessageSettings
from backend_services.message_service.app import create_app
from backend_services.message_service.prepared_frames import PreparedFramesProtocol
from backend_services.message_service.services import MessageServices
from backend_services.web import serve


def main() -> None:
    settings = MessageSettings()
    app = create_app(settings)
    services: MessageServices = app.state.services
    serve(
        app,
        settings,
        service="message",
        port=settings.port,
        ws_max_size=settings.max_frame_bytes,
        ws_compression=settings.ws_compression,
        ws_protocol=PreparedFramesProtocol,
        before_shutdown=services.hub.drain,
    )


if __name__ == "__main__":
    main()
