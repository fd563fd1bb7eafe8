"""The paho-mqtt internals gatewayd relies on are still there, all in one adapter."""

from __future__ import annotations

import ast
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from gatewayd.delivery import paho_adapter
from gatewayd.delivery.paho_adapter import PahoClient, PahoInternalsChanged, check_internals, inflight_count, use_tls

ROOT = Path(__file__).resolve().parent.parent


def test_the_installed_paho_has_every_internal_the_adapter_uses() -> None:
    check_internals()


def test_a_missing_internal_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(paho.Client, "_sock_recv")
    with pytest.raises(PahoInternalsChanged, match=r"paho\.Client\._sock_recv is gone"):
        check_internals()


def test_a_changed_signature_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def _sock_send(self: paho.Client, buf: bytes, flags: int = 0) -> int:
        return 0

    monkeypatch.setattr(paho.Client, "_sock_send", _sock_send)
    with pytest.raises(PahoInternalsChanged, match=r"_sock_send now takes \['self', 'buf', 'flags'\]"):
        check_internals()


def test_the_helpers_read_and_write_the_internals() -> None:
    client = PahoClient(paho.CallbackAPIVersion.VERSION2)
    assert inflight_count(client) == 0
    use_tls(client, True)
    assert client._ssl is True
    use_tls(client, False)
    assert client._ssl is False


def test_no_other_module_touches_paho_internals() -> None:
    # Private paho names (_sock_recv, _out_messages, _ssl...) appear only in the adapter.
    private = {"_sock_recv", "_sock_send", "_out_messages", "_ssl"}
    offenders = []
    for path in sorted((ROOT / "gatewayd").rglob("*.py")):
        if path == Path(paho_adapter.__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in private:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.attr}")
    assert offenders == []
