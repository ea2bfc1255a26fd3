"""Device profiles: what a supported device model is and how to talk to it.

One TOML file per model in ``hardware/profiles/`` (shipped inside the package and read
with :mod:`importlib.resources`, so it works from a wheel or a zip as well as from a
checkout). The simulator uses a profile to emulate the device, the console to open its
port and to reject decoded values outside the device's measuring range.

A profile names its serial ``format`` (a codec of :mod:`protocols`), its port settings
(exact pyserial arguments), sampling period, IEEE 11073 MDC codes and, per decoded value
key (``spo2_pct``, ``pulse_bpm`` …), the range the device can report. Each range must sit
inside the physiological range the message models accept for the same quantity, so a
value a device profile lets through is never refused later as implausible.

A bad profile raises :class:`ProfileError` naming the file and the field.
"""

from __future__ import annotations

import functools
import re
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Final, Literal, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocols.vocab import (
    LOINC,
    MDC,
    SBF1_CHARACTERISTICS,
    VALUE_KEYS,
    DeviceKind,
    SerialFormat,
    ValueKey,
)

__all__ = [
    "PROFILE_NAME_PATTERN",
    "DeviceProfile",
    "PortSettings",
    "ProfileError",
    "ValueRange",
    "list_profiles",
    "load_profile",
    "load_profile_file",
]

PROFILE_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,63}$"
"""Profile names are file stems: lower case, digits and dashes (never a path)."""

_NAME_RE: Final = re.compile(PROFILE_NAME_PATTERN)

STANDARD_BAUDRATES: Final = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)


class ProfileError(ValueError):
    """A profile is missing, unreadable or invalid; the message names file and field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _check_stopbits(value: float) -> float:
    if value not in (1, 1.5, 2):
        raise ValueError(f"stopbits must be 1, 1.5 or 2, not {value:g}")
    return value


class PortSettings(_Model):
    """Serial port settings, spelled as pyserial wants them.

    Attributes:
        baudrate: bits per second (standard rates only: a typo like 11520 is refused).
        bytesize: data bits, 5–8.
        parity: ``N`` none, ``E`` even, ``O`` odd, ``M`` mark, ``S`` space.
        stopbits: 1, 1.5 or 2.
        timeout: read timeout in seconds; bounds how long a reader blocks so it can
            notice a closed port or a shutdown.
        xonxoff: software flow control.
        rtscts: hardware flow control.
    """

    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400]
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: Annotated[float, AfterValidator(_check_stopbits)] = 1.0
    timeout: Annotated[float, Field(gt=0, le=60)] = 1.0
    xonxoff: bool = False
    rtscts: bool = False

    @property
    def framing(self) -> str:
        """The usual short form, e.g. ``8N1``, ``8O1``."""
        stop = "1.5" if self.stopbits == 1.5 else str(int(self.stopbits))
        return f"{self.bytesize}{self.parity}{stop}"


class ValueRange(_Model):
    """Inclusive range a device can report for one decoded value."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> ValueRange:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.min <= value <= self.max


class DeviceProfile(_Model):
    """One supported device model.

    Attributes:
        name: profile name (the file stem; checked against it when loaded from a file).
        model: model name as the manufacturer writes it.
        manufacturer: manufacturer.
        kind: device kind (:data:`protocols.vocab.DEVICE_KINDS`).
        format: serial format, one of the codec names.
        port: serial port settings.
        sampling_period_s: nominal seconds between readings (spot-check devices: the
            simulated measuring round).
        characteristic: for ``sbf1`` devices, the Bluetooth GATT characteristic UUID16
            their measurements carry (required for sbf1, refused otherwise).
        mdc: IEEE 11073-10101 codes of the metrics measured.
        ranges: decoded value key → range the device can report.
        description: free text (where the format is documented, cabling notes).
    """

    name: Annotated[str, Field(pattern=PROFILE_NAME_PATTERN)]
    model: Annotated[str, Field(min_length=1, max_length=100)]
    manufacturer: Annotated[str, Field(min_length=1, max_length=100)]
    kind: DeviceKind
    format: SerialFormat
    port: PortSettings
    sampling_period_s: Annotated[float, Field(gt=0, le=86400)]
    characteristic: int | None = None
    mdc: Annotated[tuple[int, ...], Field(min_length=1)]
    ranges: dict[ValueKey, ValueRange]
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _lists_to_tuples(cls, data: Any) -> Any:
        # TOML arrays are lists; the model is frozen, so store tuples.
        if isinstance(data, dict) and isinstance(data.get("mdc"), list):
            data = {**data, "mdc": tuple(data["mdc"])}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> DeviceProfile:
        unknown = [c for c in self.mdc if c not in MDC]
        if unknown:
            raise ValueError(f"mdc: unknown IEEE 11073-10101 code(s) {unknown}")
        if self.format == "sbf1":
            if self.characteristic not in SBF1_CHARACTERISTICS:
                known = ", ".join(f"0x{c:04X}" for c in SBF1_CHARACTERISTICS)
                raise ValueError(f"characteristic: an sbf1 device needs one of {known}")
        elif self.characteristic is not None:
            raise ValueError("characteristic: only sbf1 devices carry a GATT characteristic")
        if not self.ranges:
            raise ValueError("ranges: at least one decoded value range is needed")
        for key, rng in self.ranges.items():
            loinc = VALUE_KEYS[key].loinc
            if loinc is None:
                continue
            info = LOINC[loinc]
            assert info.low is not None and info.high is not None
            if rng.min < info.low or rng.max > info.high:
                raise ValueError(
                    f"ranges.{key}: {rng.min:g}–{rng.max:g} exceeds the plausible "
                    f"{info.low:g}–{info.high:g} {info.unit} of {loinc} ({info.display})"
                )
        return self

    def serial_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``serial.Serial``/``serial.serial_for_url``."""
        return {
            "baudrate": self.port.baudrate,
            "bytesize": self.port.bytesize,
            "parity": self.port.parity,
            "stopbits": int(self.port.stopbits)
            if float(self.port.stopbits).is_integer()
            else self.port.stopbits,
            "timeout": self.port.timeout,
            "xonxoff": self.port.xonxoff,
            "rtscts": self.port.rtscts,
        }

    def in_range(self, key: str, value: float) -> bool:
        """True when the profile has no range for ``key`` or ``value`` lies inside it."""
        rng = cast(dict[str, ValueRange], self.ranges).get(key)
        return rng is None or value in rng


def _profiles_dir() -> Traversable:
    return resources.files("hardware").joinpath("profiles")


def list_profiles() -> list[str]:
    """Names of the shipped profiles, sorted."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in _profiles_dir().iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    )


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(profile)"
        lines.append(f"{source}: field {loc}: {err['msg']}")
    return "\n".join(lines)


def _parse(text: str, source: str, expected_name: str | None) -> DeviceProfile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from exc
    if expected_name is not None and data.get("name", expected_name) != expected_name:
        raise ProfileError(
            f"{source}: field name: {data.get('name')!r} differs from the file name "
            f"{expected_name!r}"
        )
    data.setdefault("name", expected_name)
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(_format_errors(source, exc)) from exc


@functools.cache
def load_profile(name: str) -> DeviceProfile:
    """Load a shipped profile by name (e.g. ``masimo-rad97``); cached, profiles are frozen.

    Raises:
        ProfileError: unknown name (the message lists the known ones) or invalid file.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ProfileError(f"{name!r} is not a profile name (lower case, digits, dashes)")
    entry = _profiles_dir().joinpath(f"{name}.toml")
    if not entry.is_file():
        raise ProfileError(f"no profile {name!r}; known: {', '.join(list_profiles())}")
    return _parse(entry.read_text(encoding="utf-8"), f"hardware/profiles/{name}.toml", name)


def load_profile_file(path: str | Path) -> DeviceProfile:
    """Load a profile from any file (a site's own device); its name is the file stem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{p}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{p}: not UTF-8 text") from exc
    return _parse(text, str(p), p.stem)
