"""Inputs and the result hash shared by bench/trace_oracle.py and bench/trace_duckdb.py.

Only input reading and output hashing live here; each implementation computes the rule itself.
"""

import hashlib
import os
import tomllib

DEFAULT_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "profiles", "cn-2022-9th.toml")


class InputError(Exception):
    pass


def read_dwell(profile_path):
    """The profile's [open_visits]: (default dwell seconds, {kind: dwell seconds}).

    [open_visits]
    default_dwell_minutes = 60          # kinds not listed
    [[open_visits.places]]
    kind = "residence"
    dwell_minutes = 600
    """
    with open(profile_path, "rb") as f:
        doc = tomllib.load(f)
    ov = doc.get("open_visits")
    if not isinstance(ov, dict):
        raise InputError(f"{profile_path}: no [open_visits] section (the assumed stay of visits without t_out); "
                         "give --profile a file that has one")

    def minutes(v, where):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InputError(f"{profile_path}: {where} must be a non-negative integer number of minutes, not {v!r}")
        return v * 60

    if "default_dwell_minutes" not in ov:
        raise InputError(f"{profile_path}: [open_visits] has no default_dwell_minutes")
    default = minutes(ov["default_dwell_minutes"], "open_visits.default_dwell_minutes")
    by_kind = {}
    for i, p in enumerate(ov.get("places", [])):
        kind = p.get("kind")
        if not isinstance(kind, str) or not kind:
            raise InputError(f"{profile_path}: open_visits.places[{i}] has no kind")
        if kind in by_kind:
            raise InputError(f"{profile_path}: open_visits.places: kind {kind!r} listed twice")
        by_kind[kind] = minutes(p.get("dwell_minutes"), f"open_visits.places[{i}].dwell_minutes")
    return default, by_kind


def read_persons_file(path):
    """Index person ids, one a line; surrounding white space stripped, blank lines skipped."""
    with open(path, encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip()}


def result_lines(close_ids, secondary_ids):
    """The sorted lines the hash is taken over: "{tier}\\t{person_id}\\n", by (tier, id) bytewise."""
    lines = [(1, i.encode()) for i in close_ids] + [(2, i.encode()) for i in secondary_ids]
    lines.sort()
    return [b"%d\t%s\n" % (t, i) for t, i in lines]


def result_hash(close_ids, secondary_ids):
    h = hashlib.sha256()
    for line in result_lines(close_ids, secondary_ids):
        h.update(line)
    return h.hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()
