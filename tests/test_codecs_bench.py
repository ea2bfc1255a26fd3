"""The decode benchmark's machinery on tiny sizes (figures are checked by `make bench`,
never by timed tests)."""

from __future__ import annotations

from console.bench.decode import long_sbf1_stream, run


def test_decode_benchmark_reports_every_figure() -> None:
    result = run(frames=600, stream_mb=3)
    assert result["benchmark"] == "decode"
    assert result["target_frames_per_s"] == 50_000
    assert (result["sbf1_decoded"], result["sbf1_errors"]) == (600, 0)
    assert (result["masimo_decoded"], result["masimo_errors"]) == (600, 0)
    for key in ("sbf1_frames_per_s", "masimo_frames_per_s", "ratio_to_target_sbf1"):
        assert result[key] > 0
    assert result["ratio_to_target_sbf1"] == round(result["sbf1_frames_per_s"] / 50_000, 2)
    assert result["memory_bounded"] is True
    assert 0 < result["memory_traced_peak_kib"] < 8 * 1024


def test_long_stream_is_exactly_the_requested_size() -> None:
    chunks = list(long_sbf1_stream(3_000_001, frame_bytes=4096, pattern_bytes=1 << 18))
    assert sum(map(len, chunks)) == 3_000_001
    assert max(map(len, chunks)) <= 64 * 1024
