"""Station feedback: WMS verdicts and what the gateway knows itself, on a station's
indicators (tower lights, GPIO stack lights) and its live page.

:mod:`~gatewayd.feedback.verdicts` parses ``request/feedback`` and maps a verdict to a
light signal (pure), :mod:`~gatewayd.feedback.board` keeps each station's current verdict
and last reads for its page, :mod:`~gatewayd.feedback.indicators` builds indicator drivers
from settings, and :mod:`~gatewayd.feedback.service` ties them together for the daemon.
"""
