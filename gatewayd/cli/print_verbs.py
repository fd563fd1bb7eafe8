"""``gatewayd print`` and ``gatewayd label preview``: labels from the command line.

``print`` sends straight to a configured printer (no MQTT, no job queue): a test print
at install time, or a reprint by hand. It checks the printer's status before every label
and stops, saying why, when the printer is not ready. Batches take their lot ids from the
same persisted sequence as MQTT batches, so a lot id is never handed out twice.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

from gatewayd.config import Settings, default_config_path, load
from gatewayd.errors import ConfigError, PayloadError
from gatewayd.printing.labels import LabelData, TemplateLibrary
from gatewayd.printing.lot_sequence import LotSequence
from gatewayd.printing.service import build_job, parse_print_request
from gatewayd.printing.zpl import render_zpl
from gatewayd_drivers.base import DeviceUnavailable
from gatewayd_drivers.printer_transport import open_transport
from gatewayd_drivers.zebra_status import HS_REQUEST, answer_state

__all__ = ["cmd_preview", "cmd_print", "parse_sets"]


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set lot=A --set qty=40`` → ``{"lot": "A", "qty": 40}`` (qty as a number)."""
    fields: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError([f"--set: expected FIELD=VALUE, got {item!r}"])
        name = name.strip()
        fields[name] = int(value) if name in ("qty", "count") and value.isdigit() else value
    return fields


def _no_reserve(supplier: object, day: object, count: int, max_seq: int) -> range:
    raise AssertionError("lot numbers are reserved for batches only")


def _progress(done: int, total: int) -> None:
    if not sys.stderr.isatty() or total < 2:
        return
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_print(args: argparse.Namespace) -> int:
    settings = load(args.config or default_config_path())
    fields = parse_sets(args.set)
    body: dict[str, Any] = {
        "job_id": f"cli-{uuid.uuid4()}",
        "printer": args.printer,
        "template": args.template,
        "copies": args.copies,
    }
    if args.batch:
        batch = {"count": args.batch, **fields}
        body["batch"] = batch
    else:
        body["labels"] = [fields]
    library = TemplateLibrary.load(user_dir=settings.labels.templates_dir)
    try:
        req = parse_print_request(body, settings, library)
        if req.batch is not None:
            state_dir = settings.gateway.state_dir
            try:
                state_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError([f"gateway.state_dir: cannot create {state_dir} ({exc.strerror})"]) from None
            with LotSequence(state_dir / "lots.sqlite3") as lots:
                job = build_job(req, settings, reserve=lambda s, d, n, m: lots.reserve(s, d, n, max_seq=m))
        else:
            job = build_job(req, settings, reserve=_no_reserve)
    except PayloadError as exc:
        print(f"gatewayd print: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_send(settings, req.printer.id, req.printer.driver, job.labels, job.lot_ids))


async def _send(
    settings: Settings, printer_id: str, driver: str, labels: tuple[bytes, ...], lots: tuple[str, ...]
) -> int:
    printer = next(p for p in settings.printers if p.id == printer_id)
    transport = open_transport(printer.transport, id=printer.id, timeout=printer.timeout_s)
    try:
        async with transport:
            for i, label in enumerate(labels):
                if driver == "zpl":
                    answer = await transport.query(HS_REQUEST, timeout=min(3.0, printer.timeout_s))
                    if answer is not None:
                        state, detail = answer_state(answer)
                        if state != "ready":
                            print(
                                f"\ngatewayd print: {printer.id} is {state} ({detail}); "
                                f"{i} of {len(labels)} label(s) printed",
                                file=sys.stderr,
                            )
                            return 1
                await transport.send(label)
                _progress(i + 1, len(labels))
    except DeviceUnavailable as exc:
        print(f"gatewayd print: {printer.id}: {exc}", file=sys.stderr)
        return 1
    lot_text = f" (lots {lots[0]} to {lots[-1]})" if len(lots) > 1 else (f" (lot {lots[0]})" if lots else "")
    print(f"printed {len(labels)} label(s) on {printer.id}{lot_text}")
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from gatewayd.printing.preview import SUFFIXES, render_preview

    output: Path = args.output
    kinds = (*SUFFIXES, ".zpl")
    if output.suffix.lower() not in kinds:
        raise ConfigError([f"--output: expected a file ending in {', '.join(kinds)}, got {str(output)!r}"])
    if not output.parent.is_dir():
        raise ConfigError([f"--output: the directory {str(output.parent)!r} does not exist"])
    path = args.config or default_config_path()
    resolver = "https://id.gs1.org"
    user_dir: Path | None = None
    if args.config is not None or path.exists():
        settings = load(path)
        resolver = settings.labels.resolver
        user_dir = settings.labels.templates_dir
    library = TemplateLibrary.load(user_dir=user_dir)
    try:
        template = library.get(args.template)
    except KeyError:
        raise ConfigError([f"--template: no template {args.template!r}; known: {', '.join(library.names())}"]) from None
    try:
        data = LabelData.from_request(parse_sets(args.set))
        zpl = render_zpl(template, data, dpi=args.dpi, resolver=resolver)
    except PayloadError as exc:
        print(f"gatewayd label preview: {exc}", file=sys.stderr)
        return 2
    if args.zpl:
        sys.stdout.write(zpl.decode("utf-8"))
    if output.suffix.lower() == ".zpl":
        output.write_bytes(zpl)  # exactly what a printer would get
        print(f"wrote {output}", file=sys.stderr)
        return 0
    out = render_preview(zpl, dpi=args.dpi, width_mm=template.width_mm, height_mm=template.height_mm, path=args.output)
    print(f"wrote {out}", file=sys.stderr)
    return 0
