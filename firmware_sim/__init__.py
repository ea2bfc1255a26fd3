"""Firmware of simulated connected devices (EHPAD bedside devices, cardiac implants, video gateway).

Each device is a state machine over a small hardware abstraction layer so the same logic
runs on a virtual clock in tests and in real time in the demo.
"""

__all__: list[str] = []
