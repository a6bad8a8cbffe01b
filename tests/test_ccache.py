"""The compile cache's hit count comes from each builder container's own ccache log, in the
wording of the ccache versions the images carry (Debian 11's 4.2, Debian 12's 4.7), so runs
sharing one cache volume do not count each other's compilations."""

from __future__ import annotations

from pathlib import Path

from wheelhouse.builder import ccache

LOG_42 = """\
[2026-12-07T05:12:29.944729 23   ] Result: cache miss
[2026-12-07T05:12:29.957100 29   ] Result: called for link
[2026-12-07T05:12:36.684261 43   ] Result: cache hit (preprocessed)
[2026-12-07T05:12:36.684261 44   ] Result: cache hit (direct)
"""
LOG_47 = """\
[2026-12-07T05:13:15.181433 49   ] Result: local_storage_read_hit
[2026-12-07T05:13:15.181438 49   ] Result: local_storage_read_miss
[2026-12-07T05:13:15.181442 49   ] Result: local_storage_write
[2026-12-07T05:13:15.181447 49   ] Result: preprocessed_cache_hit
[2026-12-07T05:13:15.181447 50   ] Result: cache_miss
[2026-12-07T05:13:15.227084 52   ] Result: called_for_link
"""


def test_hits_and_misses_are_read_from_either_versions_log() -> None:
    assert ccache.parse_stats(LOG_42) == ccache.Stats(hits=2, misses=1)
    assert ccache.parse_stats(LOG_47) == ccache.Stats(hits=1, misses=1)
    assert ccache.parse_stats("") == ccache.Stats()
    assert (ccache.parse_stats(LOG_42) + ccache.parse_stats(LOG_47)).summary() == (
        "compile cache: 3 of 5 compilations were hits (60%)")


def test_the_log_is_the_containers_own_and_the_shared_counters_are_left_alone() -> None:
    env = ccache.environment("/wheelhouse/ccache-bin:/usr/bin")
    assert env["CCACHE_LOGFILE"] == ccache.LOG and not env["CCACHE_LOGFILE"].startswith(
        ccache.CACHE_DIR + "/")
    assert "ccache -z" not in ccache.setup_script()
    assert ccache.LOG in ccache.STATS


def test_a_cache_volume_names_its_image() -> None:
    from wheelhouse.builder.ccache import image_key, volume

    name = volume("sha256:" + "ab" * 32)
    assert name == "wheelhouse-ccache-abababababababab"
    assert image_key(name) == "abababababababab"
    assert image_key("wheelhouse-ccache-notanid") is None
    assert image_key("other-volume") is None


def test_volume_sizes_read_dockers_decimal_units(tmp_path: Path) -> None:
    import json
    import sys

    from wheelhouse.cleanup import _volume_sizes

    listing = [{"Name": "a", "Size": "11.88MB"}, {"Name": "b", "Size": "0B"},
               {"Name": "c", "Size": "523kB"}, {"Name": "d", "Size": "N/A"}]
    script = tmp_path / "df.py"
    script.write_text(f"print({json.dumps(json.dumps(listing))})")
    assert _volume_sizes([sys.executable, str(script)]) == {
        "a": 11_880_000, "b": 0, "c": 523_000}
    assert _volume_sizes([sys.executable, "-c", "print('not json')"]) == {}
