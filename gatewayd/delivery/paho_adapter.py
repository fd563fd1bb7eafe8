"""Every use of paho-mqtt's private internals, in one place, checked at import.

paho-mqtt 2.x has no public way to do three things the link needs:

- keep the socket error paho swallows (it reports a failed read or write as a bare
  "connection lost", while a user needs the reset or the TLS alert of a broker refusing
  our certificate): :class:`PahoClient` wraps ``_sock_recv`` and ``_sock_send``;
- count the QoS 1 messages waiting for their PUBACK: ``_out_messages``;
- switch TLS on or off per connection attempt, for a broker list that mixes ``mqtt://``
  and ``mqtts://``: ``_ssl``;
- switch the protocol version between attempts (``protocol = "auto"`` falls back to
  3.1.1 for a broker that refuses MQTT 5) on the same client, so the QoS 1 messages it
  holds are re-sent rather than lost with a new client: ``_protocol`` and
  ``_clean_session``.

pyproject pins paho-mqtt to one minor version, and :func:`check_internals`, run by the
test suite, fails loudly, naming what changed, the day a release moves any of them.
"""

from __future__ import annotations

import inspect

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

__all__ = ["PahoClient", "PahoInternalsChanged", "check_internals", "inflight_count", "set_protocol", "use_tls"]


class PahoInternalsChanged(RuntimeError):
    """The installed paho-mqtt no longer has an internal the link relies on."""


_METHODS = {"_sock_recv": ["self", "bufsize"], "_sock_send": ["self", "buf"]}
_ATTRIBUTES = ("_out_messages", "_ssl", "_protocol")


def check_internals() -> None:
    """Raise :class:`PahoInternalsChanged` unless every private name used here is as expected."""
    problems = []
    for name, params in _METHODS.items():
        method = getattr(paho.Client, name, None)
        if method is None:
            problems.append(f"paho.Client.{name} is gone")
        elif list(inspect.signature(method).parameters) != params:
            problems.append(f"paho.Client.{name} now takes {list(inspect.signature(method).parameters)}, not {params}")
    probe = paho.Client(CallbackAPIVersion.VERSION2)
    problems += [f"paho.Client instances no longer have {name}" for name in _ATTRIBUTES if not hasattr(probe, name)]
    if not isinstance(getattr(probe, "_out_messages", None), dict):
        problems.append("paho.Client._out_messages is no longer a dict of in-flight messages")
    v311 = paho.Client(CallbackAPIVersion.VERSION2, client_id="probe", protocol=MQTTProtocolVersion.MQTTv311,
                       clean_session=False)
    if getattr(v311, "_clean_session", None) is not False:
        problems.append("paho.Client instances no longer keep clean_session in _clean_session")
    if problems:
        raise PahoInternalsChanged(
            f"paho-mqtt {getattr(paho, '__version__', '?')} changed internals gatewayd uses: {'; '.join(problems)}"
        )


class PahoClient(paho.Client):
    """paho's client, keeping the last socket error it swallows in ``socket_error``."""

    socket_error: OSError | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        try:
            data = super()._sock_recv(bufsize)
        except BlockingIOError:
            raise
        except OSError as exc:
            self.socket_error = exc
            raise
        if not data:
            self.socket_error = self.socket_error or ConnectionResetError(0, "the broker closed the connection")
        return data

    def _sock_send(self, buf: bytes | bytearray) -> int:
        try:
            return super()._sock_send(buf)
        except BlockingIOError:
            raise
        except OSError as exc:
            self.socket_error = exc
            raise


def inflight_count(client: paho.Client) -> int:
    """QoS 1 messages handed to paho and not yet acknowledged (paho exposes no count)."""
    return len(client._out_messages)


def use_tls(client: paho.Client, on: bool) -> None:
    """Make the next ``connect`` use TLS or not; the context was set once by ``tls_set_context``."""
    client._ssl = on


def set_protocol(client: paho.Client, *, v5: bool) -> None:
    """Make the next ``connect`` speak MQTT 5 or 3.1.1 (with a persistent session).

    paho fixes the version in its constructor; the packets it builds and parses read
    ``_protocol`` at each use, and a 3.1.1 CONNECT takes its clean-session flag from
    ``_clean_session`` (MQTT 5 passes ``clean_start`` to ``connect`` instead).
    """
    client._protocol = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    if not v5:
        client._clean_session = False
