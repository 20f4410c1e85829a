#!/usr/bin/env python3
"""Tamper with an export the way an attacker who bypassed every guard could,
for test/tamper/run.sh: writes the changed events (and checkpoints, digest)
to OUT and prints what hl_verify.py must report: tenant, event id, problem.

  mutate.py KIND EVENTS CHECKPOINTS OUTDIR

KIND: alter, alter-column, remove-version, remove-free, remove-latest,
reorder, insert-version, insert-free, checkpoint, rewrite (a consistent
rewrite of the whole history: only a digest kept outside catches it).
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import hl_verify  # noqa: E402


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def save(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def stream_events(events):
    streams = {}
    for ev in events:
        if ev.get("target") is not None:
            streams.setdefault((ev["tenant"], ev["target"]), []).append(ev)
    return streams


def rehash(events, checkpoints):
    """Recompute every hash and checkpoint, as a forger who knows the format would."""
    streams = {}
    for ev in events:
        key = (ev["tenant"], ev.get("target"))
        prev = streams.get(key, hl_verify.ZERO) if ev.get("target") is not None else hl_verify.ZERO
        h = hl_verify.event_hash(ev, prev)
        ev["hash"] = h.hex()
        if ev.get("target") is not None:
            streams[key] = h
    prev = {}
    for cp in sorted(checkpoints, key=lambda c: c["number"]):
        members = [ev for ev in events
                   if ev["tenant"] == cp["tenant"] and ev.get("checkpoint") == cp["number"]]
        cp["root"] = hl_verify.mth([bytes.fromhex(ev["hash"]) for ev in members]).hex()
        cp["count"] = len(members)
        cp["first_seq"] = members[0]["seq"]
        cp["last_seq"] = members[-1]["seq"]
        cp["prev_hash"] = prev.get(cp["tenant"], hl_verify.ZERO.hex())
        cp["hash"] = hl_verify.checkpoint_hash(cp).hex()
        prev[cp["tenant"]] = cp["hash"]


def main():
    kind, events_path, checkpoints_path, out = sys.argv[1:5]
    events = load(events_path)
    checkpoints = load(checkpoints_path)
    streams = stream_events(events)
    # a stream of the first tenant with at least three versions
    tenant = events[0]["tenant"]
    stream = next(s for (t, _), s in streams.items() if t == tenant and len(s) >= 3)
    free = [ev for ev in events if ev["tenant"] == tenant and ev.get("target") is None]
    expect = None

    if kind == "alter":
        victim = stream[1]
        victim["data"] = victim["data"][:-1] + ', "amount": 1000000}'
        expect = (tenant, victim["id"], "altered")
    elif kind == "alter-column":
        victim = stream[1]
        victim["recorded_at"] = "2001" + victim["recorded_at"][4:]
        expect = (tenant, victim["id"], "altered")
    elif kind == "remove-version":
        events.remove(stream[1])
        expect = (tenant, stream[2]["id"], "removed")
    elif kind == "remove-free":
        victim = free[0]
        events.remove(victim)
        first = next(ev for ev in events
                     if ev["tenant"] == tenant and ev.get("checkpoint") == victim["checkpoint"])
        expect = (tenant, first["id"], "removed")
    elif kind == "remove-latest":
        # the newest event of the tenant: only its checkpoint knows it existed
        victim = [ev for ev in events if ev["tenant"] == tenant][-1]
        events.remove(victim)
        first = next(ev for ev in events
                     if ev["tenant"] == tenant and ev.get("checkpoint") == victim["checkpoint"])
        expect = (tenant, first["id"], "removed")
    elif kind == "reorder":
        a, b = stream[0], stream[1]
        a["seq"], b["seq"] = b["seq"], a["seq"]
        events.sort(key=lambda ev: ev["seq"])
        expect = (tenant, b["id"], "reordered")
    elif kind == "insert-version":
        forged = dict(stream[1])
        forged["id"] = "evt_forged000000000001"
        forged["seq"] = max(ev["seq"] for ev in events) + 1
        events.append(forged)
        expect = (tenant, forged["id"], "inserted")
    elif kind == "insert-free":
        # a well-formed free event, with its own correct hash, slipped into a
        # sealed checkpoint under an unused seq
        victim = free[0]
        used = {ev["seq"] for ev in events}
        forged = dict(victim, id="evt_forged000000000002", data='{"forged": true}')
        forged["seq"] = next(s for s in range(victim["seq"] + 1, victim["seq"] + 1000)
                             if s not in used)
        forged["hash"] = hl_verify.event_hash(forged, hl_verify.ZERO).hex()
        events.append(forged)
        events.sort(key=lambda ev: ev["seq"])
        first = next(ev for ev in events
                     if ev["tenant"] == tenant and ev.get("checkpoint") == victim["checkpoint"])
        expect = (tenant, first["id"], "inserted")
    elif kind == "checkpoint":
        cp = next(c for c in checkpoints if c["tenant"] == tenant and c["number"] == 2)
        cp["count"] += 1
        first = next(ev for ev in events if ev["tenant"] == tenant and ev.get("checkpoint") == 2)
        expect = (tenant, first["id"], "altered")
    elif kind == "rewrite":
        # keep the digest of the true history, then rewrite it consistently
        latest = {}
        for cp in checkpoints:
            if cp["number"] >= latest.get(cp["tenant"], {"number": -1})["number"]:
                latest[cp["tenant"]] = dict(cp)
        with open(os.path.join(out, "digest.json"), "w", encoding="utf-8") as f:
            json.dump({"tenants": list(latest.values())}, f, ensure_ascii=False)
        stream[1]["data"] = '{"rewritten": true}'
        rehash(events, checkpoints)
        expect = (tenant, "", "digest mismatch")
    else:
        sys.exit("unknown kind %s" % kind)

    save(os.path.join(out, "events.jsonl"), events)
    save(os.path.join(out, "checkpoints.jsonl"), checkpoints)
    print("\t".join(expect))


if __name__ == "__main__":
    main()
