"""``gatewayd capture`` records a configured scanner; ``gatewayd decode --capture`` reads it back.

A capture (README, "Recording a scanner") is what the scanner sent before any decoding,
taken through the driver's own raw layer (``open_raw``: HID-POS reports with the report
descriptor, evdev key events, serial or TCP chunks), one record per line with its time. A
support engineer decodes it with the same driver code the gateway runs
(:mod:`gatewayd_drivers.capture_reads`), replays it with the ``replay`` driver, or keeps it
as a test fixture.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
import time
from pathlib import Path
from typing import TextIO

from gatewayd import __version__
from gatewayd.clock import rfc3339
from gatewayd.config import (
    EvdevScannerSettings,
    ScannerSettings,
    SerialScannerSettings,
    Settings,
    TcpScannerSettings,
    default_config_path,
    load,
)
from gatewayd.errors import ConfigError
from gatewayd_drivers.base import DeviceUnavailable, RawRead, ignore_state
from gatewayd_drivers.capture import Capture, RawStream, Recordable, format_header, format_record, parse_capture
from gatewayd_drivers.capture_reads import CaptureOptions, CaptureReads, capture_reads

__all__ = ["capture_options", "cmd_capture", "decode_capture", "scanner_settings"]

EXIT_FAILED = 1
EXIT_CONFIG = 2


def scanner_settings(settings: Settings, scanner_id: str, path: Path) -> ScannerSettings:
    """The ``[[scanners]]`` entry ``scanner_id``; a ConfigError listing the known ones."""
    for sc in settings.scanners:
        if sc.id == scanner_id:
            return sc
    known = ", ".join(s.id for s in settings.scanners) or "none"
    raise ConfigError([f"--scanner: no scanner {scanner_id!r} in {path} (known: {known})"])


def capture_options(sc: ScannerSettings | None, layout: str | None) -> CaptureOptions:
    """Decode as the configured scanner ``sc`` would (its suffix, GS substitute, framing)."""
    options = CaptureOptions(layout=layout)
    match sc:
        case EvdevScannerSettings():
            return dataclasses.replace(
                options, layout=layout or sc.layout, suffix=sc.suffix, gs_substitute=sc.gs_substitute
            )
        case SerialScannerSettings() | TcpScannerSettings():
            f = sc.framing
            return dataclasses.replace(
                options,
                terminator=f.terminator.encode(),
                stx_etx=f.stx_etx,
                char_timeout=f.char_timeout_ms / 1000 if f.char_timeout_ms else None,
                max_length=f.max_length,
            )
        case _:
            return options


def decode_capture(path: Path, *, device: str, options: CaptureOptions) -> tuple[list[RawRead], str]:
    """The reads of the capture file ``path`` and a line saying how they were decoded.

    Raises:
        ConfigError: the file cannot be read, breaks the format, or names an unknown layout.
    """
    try:
        capture = parse_capture(path.read_text(encoding="utf-8"))
        decoded = capture_reads(capture, device=device, options=options)
    except OSError as exc:
        raise ConfigError([f"--capture: cannot read {path} ({exc.strerror or exc})"]) from None
    except ValueError as exc:  # CaptureError, UnicodeDecodeError, an unknown layout
        raise ConfigError([f"--capture: {path}: {exc}"]) from None
    return [timed.read for timed in decoded.reads], _summary(path, capture, decoded)


def _summary(path: Path, capture: Capture, decoded: CaptureReads) -> str:
    device = f" of {capture.usb}" if capture.usb else ""
    line = f"{path}: {capture.kind} capture{device}, {decoded.decoder}: {len(decoded.reads)} read(s)"
    if capture.kind == "evdev":
        line += f"; {decoded.ignored_keys} key(s) typed nothing outside a read (ignored)"
    return line


# -- gatewayd capture ----------------------------------------------------------------------


def cmd_capture(args: argparse.Namespace) -> int:
    path = args.config or default_config_path()
    settings = load(path)
    sc = scanner_settings(settings, args.scanner, path)
    if args.seconds is not None and args.seconds <= 0:
        raise ConfigError([f"--seconds: expected a number of seconds above 0, got {args.seconds:g}"])
    from gatewayd.reads.scanners import build_scanner

    driver = build_scanner(sc, on_state=ignore_state)
    if not isinstance(driver, Recordable):
        print(f"gatewayd capture: scanner {sc.id} uses the {sc.driver} driver: there is no device to record",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    return asyncio.run(_capture(driver, args.output, args.seconds, capture_options(sc, None)))


async def _capture(driver: Recordable, output: Path, seconds: float | None, options: CaptureOptions) -> int:
    try:
        stream = await driver.open_raw()
    except DeviceUnavailable as exc:
        print(f"gatewayd capture: scanner {driver.id}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    header = dataclasses.replace(
        stream.header,
        headers=(*stream.header.headers, ("recorded", rfc3339(time.time())), ("gatewayd", __version__)),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    until = f"for {seconds:g} s" if seconds else "until Ctrl-C"
    print(f"gatewayd capture: recording scanner {driver.id} ({header.kind}, {header.device}) to {output} {until}; "
          "scan now", file=sys.stderr)  # fmt: skip
    try:
        with output.open("w", encoding="utf-8") as out:
            out.write(format_header(header))
            out.flush()
            count, why = await _record(stream, out, seconds, stop)
    except OSError as exc:
        print(f"gatewayd capture: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await stream.aclose()
    try:
        reads, summary = decode_capture(output, device=driver.id, options=options)
    except ConfigError as exc:  # a layout the file's header names that cannot be decoded
        summary, reads = "; ".join(exc.problems), []
    print(f"gatewayd capture: {why}: {count} record(s) written to {output}", file=sys.stderr)
    print(f"gatewayd capture: {summary}", file=sys.stderr)
    for n, read in enumerate(reads, start=1):
        text = read.data.decode("utf-8", errors="backslashreplace")
        errors = f"  errors: {'; '.join(read.errors)}" if read.errors else ""
        symbology = f"{read.symbology} " if read.symbology else ""
        print(f"  {n}: {symbology}{text!r}{errors}", file=sys.stderr)
    print(f"gatewayd capture: decode it with: gatewayd decode --capture {output}", file=sys.stderr)
    return 0


async def _record(stream: RawStream, out: TextIO, seconds: float | None, stop: asyncio.Event) -> tuple[int, str]:
    """Write records until the time is up, a signal comes, or the device goes away."""
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds
    records = stream.records()
    stopped = asyncio.ensure_future(stop.wait())
    start: float | None = None
    count = 0
    try:
        while True:
            following = asyncio.ensure_future(anext(records))
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            await asyncio.wait({following, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, OSError):
                    await following
                return count, "stopped" if stop.is_set() else f"{seconds:g} s passed"
            try:
                payload = following.result()
            except StopAsyncIteration:
                return count, "the device's stream ended"
            except OSError as exc:
                return count, f"the device went away ({exc.strerror or exc})"
            now = time.monotonic()
            start = now if start is None else start
            out.write(format_record(now - start, payload))
            out.flush()  # a capture cut short by a kill is still a valid file
            count += 1
    finally:
        stopped.cancel()
