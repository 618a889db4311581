"""Channel messages sent from decl's threads that never overtake the channel's CLOSE.

paramiko builds a channel message under the channel's lock but sends it after releasing the
lock (paramiko/paramiko issues #1115, #1584, #1705, still open in paramiko 5.1). When the
remote command ends, the server sends EOF, exit-status and CLOSE; paramiko's transport thread
answers CLOSE at once. If a decl thread has just built an EOF (`shutdown_write`) or a
`signal` request for that channel, the transport thread's CLOSE can go out first: the server
then frees the channel, receives a message for a channel it no longer has, and OpenSSH's sshd
treats that as a protocol error and drops the WHOLE connection ("ieof packet referred to
nonexistent channel N"), failing every other command running on it ("connection ... lost").

The fix: a message a decl thread sends is marked "in flight" under the channel's lock; the
transport's handler for the server's CLOSE (OrderedTransport) defers its answer while a
message is in flight, and the sending thread answers the deferred CLOSE right after its own
message went out. Nothing waits on anything: the transport thread never blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import paramiko
from paramiko.common import MSG_CHANNEL_CLOSE, cMSG_CHANNEL_REQUEST
from paramiko.message import Message

_IN_FLIGHT = "_decl_in_flight"  # messages built by decl threads, not sent yet
_DEFERRED = "_decl_deferred_close"  # "remote" (the server's CLOSE came) or "local"


def _close_now(channel: paramiko.Channel, remote: bool) -> None:
    """What paramiko does on CLOSE (remote) or Channel.close (local), under our rules."""
    with channel.lock:
        if not remote and channel._pipe is not None:
            channel._pipe.close()
            channel._pipe = None
        if getattr(channel, _IN_FLIGHT, 0):
            if remote or not getattr(channel, _DEFERRED, None):
                setattr(channel, _DEFERRED, "remote" if remote else "local")
            return
        messages = channel._close_internal()
        if remote:
            channel.transport._unlink_channel(channel.chanid)
    for message in messages:
        if message is not None:
            channel.transport._send_user_message(message)


def _handle_close(channel: paramiko.Channel, message: Message) -> None:
    """The transport thread's handler for the server's CLOSE (never blocks on a sender)."""
    _close_now(channel, remote=True)


class OrderedTransport(paramiko.Transport):  # type: ignore[misc]
    """A paramiko Transport whose answer to a channel's CLOSE waits for decl's messages."""

    _channel_handler_table = {
        **paramiko.Transport._channel_handler_table,
        MSG_CHANNEL_CLOSE: _handle_close,
    }


def _send(channel: paramiko.Channel, build: Callable[[], Message | None]) -> bool:
    """Build a message under the channel's lock (unless closed) and send it before any CLOSE."""
    with channel.lock:
        if channel.closed or not channel.active:
            return False
        message = build()
        if message is None:
            return False
        setattr(channel, _IN_FLIGHT, getattr(channel, _IN_FLIGHT, 0) + 1)
    try:
        channel.transport._send_user_message(message)
    finally:
        with channel.lock:
            left = getattr(channel, _IN_FLIGHT, 1) - 1
            setattr(channel, _IN_FLIGHT, left)
            deferred = getattr(channel, _DEFERRED, None) if left == 0 else None
            if deferred:
                setattr(channel, _DEFERRED, None)
        if deferred:
            _close_now(channel, remote=deferred == "remote")
    return True


def send_eof(channel: Any) -> None:
    """`channel.shutdown_write()`, never sent after the channel's CLOSE."""
    if isinstance(channel, paramiko.Channel):
        _send(channel, channel._send_eof)
    else:
        channel.shutdown_write()


def send_signal(channel: paramiko.Channel, name: str) -> None:
    """RFC 4254 6.9 `signal` request (OpenSSH's sshd signals the command's process group);
    nothing when the channel is already closed (sshd drops a connection that sends a request
    for a channel it has freed)."""

    def build() -> Message:
        message = Message()
        message.add_byte(cMSG_CHANNEL_REQUEST)
        message.add_int(channel.remote_chanid)
        message.add_string("signal")
        message.add_boolean(False)
        message.add_string(name)
        return message

    _send(channel, build)


def close_channel(channel: Any) -> None:
    """`channel.close()`, after any message of decl's still in flight on it."""
    if isinstance(channel, paramiko.Channel) and channel.transport is not None:
        _close_now(channel, remote=False)
    else:
        channel.close()
