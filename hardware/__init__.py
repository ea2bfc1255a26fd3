"""Device profiles and deployment files (Mosquitto configuration, udev rules).

A package so that profiles ship inside the distribution and load by name wherever the
code is installed::

    from hardware import load_profile, list_profiles

    profile = load_profile("masimo-rad97")
    port = serial.serial_for_url(url, **profile.serial_kwargs())

``hardware/mosquitto/`` holds the broker configuration for a centre deployment (TLS
listener, password file, ACL confining each gateway to its site's subtree) and
``hardware/udev/`` an example of stable device names for USB-serial adapters.
"""

from hardware.profiles import (
    DeviceProfile,
    PortSettings,
    ProfileError,
    ValueRange,
    list_profiles,
    load_profile,
    load_profile_file,
)

__all__ = [
    "DeviceProfile",
    "PortSettings",
    "ProfileError",
    "ValueRange",
    "list_profiles",
    "load_profile",
    "load_profile_file",
]
