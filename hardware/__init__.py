"""Device profiles and deployment files (Mosquitto configuration, udev rules).

A package so that profiles ship inside the distribution and load by name wherever the
code is installed.
"""

__all__: list[str] = []
