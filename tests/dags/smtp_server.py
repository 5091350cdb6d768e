"""A real SMTP server on a free local port (aiosmtpd) that keeps the messages it receives."""

from __future__ import annotations

import email
import email.policy
import json
import socket
from contextlib import contextmanager

from aiosmtpd.controller import Controller


class _Inbox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def smtp_server():
    """Yields (port, messages received so far)."""
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, inbox.messages
    finally:
        controller.stop()


def airflow_connection(port: int) -> str:
    """AIRFLOW_CONN_SMTP_DEFAULT for the server: plain SMTP, no TLS, no login."""
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port,
                       "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0}})


def text_of(message) -> str:
    return "\n".join(part.get_content() for part in message.walk()
                     if part.get_content_maintype() == "text")
