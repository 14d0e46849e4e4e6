"""Local servers for ``make up`` and tests: started on 127.0.0.1, health-checked, stopped cleanly."""

from __future__ import annotations

from btcforecast.devservers.process import ManagedProcess, ProcessStartError, free_port, free_ports, port_open

__all__ = ["ManagedProcess", "ProcessStartError", "free_port", "free_ports", "port_open"]
