"""The ``gatewayd`` command: run, check, decode, capture, devices, demo, print, label, outbox, status."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from gatewayd import __version__
from gatewayd.config import STEPS, Settings, VendorPrefix, default_config_path, load
from gatewayd.errors import ConfigError, GatewaydError, StateUnwritable
from gatewayd.logging_setup import setup_logging

__all__ = ["main"]

EXIT_CONFIG = 2
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: the status of a tool whose reader went away


def _config_arg(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument(
        "--config",
        "-c",
        type=Path,
        default=None,
        metavar="PATH",
        help=help or f"config file (default: $GATEWAYD_CONFIG or {default_config_path()})",
    )


def _load(args: argparse.Namespace) -> Settings:
    return load(args.config or default_config_path())


def _print_problems(exc: ConfigError, path: Path | None) -> None:
    from gatewayd.cli.check import print_problems

    print_problems(exc.problems, path)


# -- run ---------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    settings = _load(args)
    setup_logging(args.log_level or settings.log.level)
    from gatewayd.daemon import Gateway

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Gateway(settings).run(stop)

    asyncio.run(main())
    return 0


# -- check -------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from gatewayd.cli.check import cmd_check as run

    return run(args)


# -- decode ------------------------------------------------------------------------------


def cmd_decode(args: argparse.Namespace) -> int:
    """Print what ``gatewayd run`` would publish for each RAW read (gatewayd.reads.scan_event),
    or for each read of a capture file, decoded by its driver's code (gatewayd.cli.capture).

    One JSON line per read: the scan payload with ``seq`` and ``event_id`` null (the outbox
    assigns them), or, for a step-command barcode, ``{"step_command", "station", "raw"}``;
    the reads after it are tagged with the new step, as under ``run``. The dedupe window is
    not applied: every read is shown.
    """
    import dataclasses

    from gatewayd.clock import ClockSync
    from gatewayd.config import GatewaySettings, StationSettings
    from gatewayd.reads.decode import DecodeOptions
    from gatewayd.reads.scan_event import StepCommandRead, scan_event
    from gatewayd.reads.stations import Stations, StationState
    from gatewayd_drivers.base import RawRead
    from gatewayd_drivers.raw_escapes import unescape

    if (args.capture is None) == (not args.raw):
        raise ConfigError(["decode: give RAW reads or --capture FILE (one of them)"])
    if args.capture is None and (args.layout or args.scanner):
        raise ConfigError(["--layout and --scanner apply to --capture FILE only"])
    reads: list[RawRead] = []
    problems: list[str] = []
    for number, raw in enumerate(args.raw, start=1):
        try:
            reads.append(RawRead(unescape(raw), device="cli"))
        except ValueError as exc:
            problems.append(f'RAW {number} "{raw}": {exc}')
    if problems:
        print(f"gatewayd decode: {len(problems)} problem(s) in the reads:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG

    path = args.config or default_config_path()
    from_file = args.config is not None or path.exists()
    settings = load(path) if from_file else Settings(gateway=GatewaySettings(id="gatewayd"))
    scanner, prefix = "cli", args.prefix
    if args.capture is not None:
        from gatewayd.cli.capture import capture_options, decode_capture, scanner_settings

        sc = scanner_settings(settings, args.scanner, path) if args.scanner else None
        if sc is not None:
            from gatewayd.reads.vendor_ids import prefix_of

            scanner, prefix = sc.id, prefix_of(sc)
        reads, summary = decode_capture(args.capture, device=scanner, options=capture_options(sc, args.layout))
        print(f"gatewayd decode: {summary}", file=sys.stderr)
    station: StationSettings | None = None
    if args.station and from_file:
        try:
            station = settings.station(args.station)
        except KeyError:
            known = ", ".join(s.id for s in settings.stations) or "none"
            raise ConfigError([f"--station: no station {args.station!r} in {path} (known: {known})"]) from None
    elif settings.stations:
        station = settings.stations[0]
    if station is None:
        station = StationSettings(id=args.station or "station", step=args.step or "receiving")
    state = StationState(station.id, args.step or station.step, time.time(), station.location, station.dedupe_ms)
    step_command = Stations(settings).step_command
    options = DecodeOptions.from_settings(settings.decode)
    synced = ClockSync().synced()
    for read in reads:
        result = scan_event(
            read,
            settings=settings,
            station=state,
            scanner=scanner,
            clock_synced=synced,
            step_command=step_command,
            options=options,
            prefix=prefix,
        )
        if isinstance(result, StepCommandRead):
            state = dataclasses.replace(state, step=result.step, since=time.time())
            line: dict[str, Any] = {
                "step_command": result.step,
                "station": result.station,
                "raw": read.data.decode("utf-8", errors="backslashreplace"),
            }
        else:
            line = result.body(seq=None, event_id=None)
        print(json.dumps(line, ensure_ascii=False))
    return 0


# -- outbox ------------------------------------------------------------------------------


def cmd_outbox(args: argparse.Namespace) -> int:
    from gatewayd.clock import rfc3339
    from gatewayd.delivery.outbox import Outbox

    settings = _load(args)
    path = settings.gateway.state_dir / "outbox.sqlite3"
    if not path.exists():
        print(f"gatewayd: no outbox at {path} yet (the daemon creates it on first start)", file=sys.stderr)
        return 1
    # inspect: the daemon may be running; only it recovers a damaged outbox.
    with Outbox.open(path, settings.outbox, inspect=True) as box:
        if args.dump:
            start, end = _range(args.dump, box.last_seq, "--dump")
            cursor = start
            while cursor <= end:
                events = box.history(from_seq=cursor, to_seq=end, limit=1000)
                if not events:
                    break
                for ev in events:
                    sys.stdout.write(ev.payload.decode() + "\n")
                cursor = events[-1].seq + 1
            return 0
        st = box.stats()
        reserved = box.mark.read()  # seq.hwm: seqs up to this may have been used
        kept = [p.name for p in box.kept_aside()]  # files set aside after a recovery
    if args.replay:
        start, end = _range(args.replay, st.last_seq, "--replay")
        return _send_request(settings, "replay", {"from_seq": start, "to_seq": end})
    info = {
        "path": str(path),
        "depth": st.depth,
        "bytes": st.depth_bytes,
        "oldest_undelivered_seq": st.oldest_undelivered_seq,
        "oldest_undelivered_at": rfc3339(st.oldest_undelivered_at) if st.oldest_undelivered_at else None,
        "last_seq": st.last_seq,
        "retained": st.retained,
        "first_retained_seq": st.first_retained_seq,
        "full": st.full,
        "seq_reserved": reserved,
        "kept_aside": kept,
    }
    if args.json:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            text = ", ".join(v) if isinstance(v, list) else v
            print(f"{k:24} {text if text not in (None, '') else '-'}")
    return 0


def _range(text: str, last: int, flag: str) -> tuple[int, int]:
    start_s, _, end_s = text.partition(":")
    try:
        start = int(start_s)
        end = int(end_s) if end_s else last
    except ValueError:
        raise ConfigError([f"{flag}: expected FROM or FROM:TO sequence numbers, got {text!r}"]) from None
    if start < 1:
        raise ConfigError([f"{flag}: FROM must be at least 1, got {text!r}"])
    if not end_s and start > last:
        raise ConfigError([f"{flag}: FROM ({start}) is beyond the last captured seq ({last}), got {text!r}"])
    if end < start:
        raise ConfigError([f"{flag}: TO ({end}) is smaller than FROM ({start}), got {text!r}"])
    return start, end


def _send_request(settings: Settings, command: str, body: dict[str, Any], timeout: float = 10.0) -> int:
    """Send one request to the running gateway through the broker and print the answer."""
    from gatewayd.cli.request_client import request

    answer = request(settings, command, body, timeout=timeout)  # RequestFailed: one line, exit 1
    print(json.dumps(answer, indent=2))
    return 0 if answer.get("status") == "ok" else 1


# -- demo, devices, print, label, status (implemented in their own modules) ----------------


def cmd_status(args: argparse.Namespace) -> int:
    from gatewayd.cli.status import cmd_status as run

    return run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from gatewayd.demo.runner import run_demo

    return run_demo(args)


def cmd_capture(args: argparse.Namespace) -> int:
    from gatewayd.cli.capture import cmd_capture as run

    return run(args)


def cmd_devices(args: argparse.Namespace) -> int:
    from gatewayd.cli.devices import main as devices_main

    argv = ["--json"] if args.json else []
    return devices_main(argv)


def cmd_print(args: argparse.Namespace) -> int:
    from gatewayd.cli.print_verbs import cmd_print as run

    return run(args)


def cmd_label_preview(args: argparse.Namespace) -> int:
    from gatewayd.cli.print_verbs import cmd_preview as run

    return run(args)


# -- parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatewayd",
        description="Hardware gateway for warehouse lot tracking: scanners to MQTT, lot labels to printers.",
    )
    parser.add_argument("--version", action="version", version=f"gatewayd {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback for every error")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = sub.add_parser("run", help="run the daemon", description="Run the gateway daemon until SIGTERM or Ctrl-C.")
    _config_arg(p)
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="override [log] level")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "check",
        help="validate the config and print the effective config",
        description="Validate the configuration and its label templates, and what it needs from this "
        "machine (MQTT password and TLS files, python-evdev for keyboard-wedge scanners; device files "
        "that are not there now are noted, not failed). Exit 0 and print the effective configuration, "
        "or exit 2 listing every problem by key path. Several configs: each is checked, one line each "
        "instead of the effective configuration, exit 2 if any has a problem.",
    )
    p.add_argument(
        "--config",
        "-c",
        type=Path,
        nargs="+",
        action="extend",
        default=None,
        metavar="PATH",
        help=f"config file(s) (default: $GATEWAYD_CONFIG or {default_config_path()})",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="check only what does not depend on this machine (for CI on a config repository): skip "
        "the password, TLS and device files and optional modules, naming each on stderr",
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "decode",
        help="show the scan payload raw reads would produce",
        description="Print, as JSON lines, the scan payload `gatewayd run` would publish for each RAW "
        "read (seq and event_id are null: the outbox assigns them); a step-command barcode prints "
        '{"step_command": STEP, "station": ..., "raw": ...} and tags the reads after it. '
        "Escapes, as in replay files: \\xHH for any byte, \\r \\n \\t \\\\, and control "
        "characters by name, e.g. <GS> for the GS1 group separator (0x1D), <RS>, <EOT>.",
    )
    _config_arg(p)
    p.add_argument("--station", help="station whose step and read point tag the reads")
    p.add_argument("--step", choices=STEPS, help="override the station's step")
    p.add_argument(
        "--prefix",
        choices=get_args(VendorPrefix),
        default="aim",
        help="what the scanner puts before each read, as a serial or tcp scanner's prefix setting: "
        "an AIM identifier (default), a Honeywell Code ID, a Zebra code type, or none",
    )
    p.add_argument("raw", nargs="*", metavar="RAW", help="a raw read, e.g. ']C1010950600013435210ABC123<GS>17271231'")
    p.add_argument(
        "--capture",
        type=Path,
        metavar="FILE",
        help="decode the reads of a capture file (gatewayd capture -o FILE) through its driver's code instead",
    )
    p.add_argument(
        "--layout",
        metavar="L",
        help="with --capture: the keyboard layout of an evdev capture (us, uk, de, fr), or the report layout of a "
        "hidpos capture (generic, zebra, honeywell, datalogic, newland); default: what the capture says",
    )
    p.add_argument(
        "--scanner",
        metavar="ID",
        help="with --capture: decode with this configured scanner's settings (suffix, gs_substitute, framing, "
        "prefix) and name it in the payloads",
    )
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser(
        "capture",
        help="record what a configured scanner sends, for support and tests",
        description="Record the raw stream of a configured scanner (HID-POS reports with the report descriptor, "
        "key events, serial or TCP bytes) to a capture file, until --seconds pass or Ctrl-C, then show the reads "
        "it holds. The device is opened as the gateway opens it: a keyboard wedge, serial port or TCP port the "
        "running service holds is reported busy (stop the service first). Decode the file with "
        "`gatewayd decode --capture FILE`, or replay it with a replay scanner.",
    )
    _config_arg(p)
    p.add_argument("--scanner", required=True, metavar="ID", help="the scanner's id in the config")
    p.add_argument("--seconds", type=float, metavar="N", help="stop after N seconds (default: at Ctrl-C)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the capture file to write")
    p.set_defaults(func=cmd_capture)

    p = sub.add_parser(
        "devices",
        help="list scanners and printers on this machine with config snippets",
        description="List candidate scanners (keyboard-wedge, HID-POS, serial) and printers on this "
        "machine, each with a ready-to-paste config snippet.",
    )
    _config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser(
        "demo",
        help="run the embedded demo (local broker, simulated dock, virtual printer)",
        description="Start a private local broker (mosquitto, else amqtt), run the gateway on the demo "
        "config with a simulated dock replaying a day of reads and a virtual printer writing ZPL and PNG "
        "previews to ./demo-out/, and show the events as a WMS sees them. Ctrl-C stops it.",
    )
    _config_arg(
        p,
        help="demo config template (default: config/demo/gatewayd.demo.toml; {state_dir}, {broker_url}, "
        "{protocol}, {replay_dir}, {loop}, {printer_url} and {http_listen} are filled in)",
    )
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="where demo state and printed labels go")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed factor (2 = twice as fast)")
    p.add_argument("--once", action="store_true", help="stop when the day has been replayed")
    p.add_argument("--port", type=int, default=0, help="broker port (default: a free port)")
    p.add_argument(
        "--http-port",
        type=int,
        default=8080,
        help="port of the station pages on 127.0.0.1 (default: 8080; 0 = a free port)",
    )
    p.add_argument(
        "--broker",
        choices=["mosquitto", "amqtt"],
        default="mosquitto",
        help="which local broker to start (default: mosquitto when installed, else amqtt)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "print",
        help="print a label locally",
        description="Render a label template and send it to a configured printer (bypassing MQTT).",
    )
    _config_arg(p)
    p.add_argument("--printer", required=True, help="printer id from the config")
    p.add_argument("--template", default="lot", help="label template name (default: lot)")
    p.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="a label field, e.g. lot=SUP1-20261127-0001"
    )
    p.add_argument("--copies", type=int, default=1, help="copies of each label")
    p.add_argument(
        "--batch",
        type=int,
        default=0,
        metavar="N",
        help="generate N lot ids by the lot-number convention (needs supplier=, date=)",
    )
    p.set_defaults(func=cmd_print)

    p = sub.add_parser("label", help="label tools", description="Label tools.")
    lsub = p.add_subparsers(dest="label_verb", metavar="VERB", required=True)
    lp = lsub.add_parser(
        "preview",
        help="render a label to PNG, SVG or PDF",
        description="Render a label template with the given fields to an image (zplkit renders the real ZPL "
        "where installed; otherwise an approximate segno/Pillow preview).",
    )
    _config_arg(lp)
    lp.add_argument("--template", default="lot", help="label template name (default: lot)")
    lp.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="a label field")
    lp.add_argument("--dpi", type=int, choices=[203, 300, 600], default=203)
    lp.add_argument("--zpl", action="store_true", help="also print the ZPL to stdout")
    lp.add_argument("-o", "--output", type=Path, required=True, help="output file: .png, .svg, .pdf or .zpl")
    lp.set_defaults(func=cmd_label_preview)

    p = sub.add_parser(
        "outbox",
        help="show outbox depth, oldest undelivered, last seq; replay",
        description="Show the outbox: depth, oldest undelivered event, last seq. --replay asks the running "
        "gateway to re-publish a range; --dump prints retained events as JSON lines.",
    )
    _config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--replay", metavar="FROM[:TO]", help="ask the running gateway to re-publish this seq range")
    g.add_argument("--dump", metavar="FROM[:TO]", help="print retained events in this seq range as JSON lines")
    p.set_defaults(func=cmd_outbox)

    p = sub.add_parser(
        "status",
        help="is the gateway on this machine working?",
        description="Show whether the gateway daemon runs and since when, the broker it is connected to, "
        "the outbox depth and oldest undelivered read, the last read per station, each scanner's and "
        "printer's state, and active alarms. Read from the status file the daemon keeps in its state "
        "directory: works with the broker down. Exit 0 running, 1 running but not responding, "
        "3 not running, 4 unknown (the status file cannot be read).",
    )
    _config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb. A closed output pipe (``gatewayd check | head``) ends it quietly with
    :data:`EXIT_PIPE_CLOSED`, as a shell reports ``git log | head`` or ``cat | head``."""
    try:
        try:
            return _run_verb(argv)
        finally:
            # Flush here, where a closed pipe can still be caught, not at interpreter exit
            # (which would print "Exception ignored ... BrokenPipeError"). This also covers
            # --help, whose SystemExit passes through.
            sys.stdout.flush()
    except BrokenPipeError:
        # What is still buffered goes nowhere instead of failing again at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_PIPE_CLOSED


def _run_verb(argv: Sequence[str] | None) -> int:
    """The one error path of every verb: an expected failure is one ``gatewayd: error:``
    line (exit 2 when retrying cannot help, so systemd does not restart into it; else 1);
    a traceback means a bug, or ``--debug`` was given."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        if args.debug:
            raise
        _print_problems(exc, getattr(args, "config", None) or None)
        return EXIT_CONFIG
    except tomllib.TOMLDecodeError as exc:  # pragma: no cover - load() converts these
        print(f"gatewayd: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise  # main() ends quietly on a closed output pipe
    except (GatewaydError, OSError) as exc:
        # OSError: the environment said no (a file that cannot be written, a refused
        # connection); gatewayd's own errors already say what to do.
        if args.debug:
            raise
        print(f"gatewayd: error: {_describe(exc)}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, StateUnwritable) else 1


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__
