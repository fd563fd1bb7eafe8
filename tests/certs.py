"""A throwaway certificate authority for TLS tests, made with the ``openssl`` command.

``make_pki(dir)`` writes a CA, a server certificate for 127.0.0.1 and localhost (subject
alternative names, as hostname checking requires), a client certificate, and a second,
unrelated CA whose trust must not let a client accept the server.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Pki", "make_pki", "openssl"]

DAYS = "2"


def openssl() -> str | None:
    return shutil.which("openssl")


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # trusts nothing here: a client configured with it must reject the server
    other_client_cert: Path  # signed by other_ca: the server must reject it
    other_client_key: Path


def _run(*args: str, cwd: Path) -> None:
    tool = openssl()
    assert tool is not None, "openssl is not installed"
    done = subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")


def _key(path: Path, cwd: Path) -> None:
    _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path), cwd=cwd)


def _ca(name: str, d: Path) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.crt"
    _key(key, d)
    _run(
        "req", "-x509", "-new", "-key", str(key), "-out", str(cert), "-days", DAYS,
        "-subj", f"/CN=gatewayd test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-addext", "subjectKeyIdentifier=hash",
        cwd=d,
    )
    return cert, key


def _leaf(name: str, cn: str, ca: tuple[Path, Path], extensions: str, d: Path) -> tuple[Path, Path]:
    key, csr, cert, ext = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt", d / f"{name}.ext"
    _key(key, d)
    _run("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={cn}", cwd=d)
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
        f"{extensions}\n"
    )
    _run(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
        "-out", str(cert), "-days", DAYS, "-extfile", str(ext),
        cwd=d,
    )
    return cert, key


def make_pki(d: Path, *, client_cn: str = "gateway") -> Pki:
    d.mkdir(parents=True, exist_ok=True)
    ca = _ca("ca", d)
    other = _ca("other-ca", d)
    server_ext = "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost"
    server = _leaf("server", "localhost", ca, server_ext, d)
    client = _leaf("client", client_cn, ca, "extendedKeyUsage=clientAuth", d)
    other_client = _leaf("other-client", client_cn, other, "extendedKeyUsage=clientAuth", d)
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return Pki(
        ca=ca[0], server_cert=server[0], server_key=server[1], client_cert=client[0], client_key=client[1],
        other_ca=other[0], other_client_cert=other_client[0], other_client_key=other_client[1],
    )
