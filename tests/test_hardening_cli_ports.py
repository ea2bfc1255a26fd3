"""``samu protocols decode`` reads ports given as pyserial URLs (README: "Ports are pyserial
URLs, so socket://host:port and rfc2217://host:port work too"), and a missing device
path still gets a clear one-line error.

The port is a real TCP server on 127.0.0.1 (an ephemeral port), in a thread, which sends
a few encoded frames and closes the connection: the end of the stream.
"""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from console.cli import main
from protocols.codecs import get_codec


def run(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    out, err = io.BytesIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    fake_out = io.TextIOWrapper(out, write_through=True)
    monkeypatch.setattr(sys, "stdout", fake_out)
    monkeypatch.setattr(sys, "stderr", err)
    code = main(list(args))
    fake_out.flush()
    return code, [json.loads(x) for x in out.getvalue().decode().splitlines()], err.getvalue()


@contextmanager
def serving(chunks: list[bytes]) -> Iterator[int]:
    """A one-connection TCP server on 127.0.0.1 sending ``chunks`` then closing."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(10)
    port = server.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            for chunk in chunks:
                conn.sendall(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        thread.join(10)
        server.close()


SPO2 = [
    {"kind": "spo2", "values": {"spo2_pct": 98 - i, "pulse_bpm": 70 + i}, "seq": i}
    for i in range(3)
]


def test_decode_reads_a_socket_url_to_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    sbf1 = get_codec("sbf1")
    frames = [sbf1.encode(r) for r in SPO2]
    # the last bytes arrive together with the end of the connection: none may be lost
    with serving([frames[0], frames[1] + frames[2]]) as port:
        code, lines, err = run(
            monkeypatch, "protocols", "decode", "--format", "sbf1", f"socket://127.0.0.1:{port}"
        )
    assert code == 0, err
    assert [line["values"] for line in lines] == [r["values"] for r in SPO2]
    assert [line["seq"] for line in lines] == [0, 1, 2]
    assert err.strip().splitlines()[-1] == "decoded 3, errors 0"


def test_bytes_sent_as_soon_as_the_connection_opens_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A capture replayed over TCP arrives at once: pyserial's clearing of the input on
    open must not throw its beginning away."""
    from serial.urlhandler import protocol_socket

    # Make the race certain: the data is there before pyserial finishes opening.
    configure = protocol_socket.Serial._reconfigure_port

    def slow_configure(self: Any, *args: Any) -> Any:
        time.sleep(0.3)
        return configure(self, *args)

    monkeypatch.setattr(protocol_socket.Serial, "_reconfigure_port", slow_configure)
    sbf1 = get_codec("sbf1")
    records = [
        {"kind": "spo2", "values": {"spo2_pct": 90 + i % 10, "pulse_bpm": 60 + i % 50}, "seq": i}
        for i in range(5000)
    ]
    with serving([b"".join(sbf1.encode(r) for r in records)]) as port:
        code, lines, err = run(
            monkeypatch, "protocols", "decode", "--format", "sbf1", f"socket://127.0.0.1:{port}"
        )
    assert code == 0, err
    assert [line["seq"] for line in lines] == list(range(5000))
    assert err.strip().splitlines()[-1] == "decoded 5000, errors 0"


def test_a_frame_cut_by_the_end_of_the_connection_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    masimo = get_codec("masimo-ascii1")
    line = masimo.encode({"values": {"spo2_pct": 97, "pulse_bpm": 64}})
    with serving([line, line[:10]]) as port:
        code, lines, err = run(
            monkeypatch,
            "protocols",
            "decode",
            "--format",
            "masimo-ascii1",
            f"socket://127.0.0.1:{port}",
        )
    assert code == 0, err
    assert lines[0]["values"] == {"spo2_pct": 97, "pulse_bpm": 64}
    assert lines[1]["error"] == "truncated" and lines[1]["offset"] == len(line)
    assert err.strip().splitlines()[-1] == "decoded 1, errors 1"


def test_a_port_nobody_listens_on_is_a_one_line_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as s:  # a port that was free a moment ago, on loopback
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, lines, err = run(
        monkeypatch, "protocols", "decode", "--format", "sbf1", f"socket://127.0.0.1:{port}"
    )
    assert code == 2 and lines == []
    assert len(err.strip().splitlines()) == 1
    assert f"cannot open socket://127.0.0.1:{port}" in err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("bogus://somewhere", "cannot open bogus://somewhere"),
        ("socket://127.0.0.1", "cannot open socket://127.0.0.1"),  # no port
        ("/dev/samu/no-such-oximeter", "no such file: /dev/samu/no-such-oximeter"),
    ],
)
def test_bad_urls_and_missing_device_paths_get_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, target: str, message: str
) -> None:
    code, lines, err = run(monkeypatch, "protocols", "decode", "--format", "sbf1", target)
    assert code == 2 and lines == []
    assert len(err.strip().splitlines()) == 1, err
    assert message in err


def test_encode_says_it_reads_files_not_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(
        monkeypatch, "protocols", "encode", "--format", "sbf1", "socket://127.0.0.1:9"
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "JSON lines" in err and "no such file" not in err
