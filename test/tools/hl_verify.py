#!/usr/bin/env python3
"""Outside verifier for headlessly_events' tamper evidence.

Written from the byte-for-byte description in the README, not from the C: it
shares no code or tables with src/tamper/.  Python 3 standard library only.

  hl_verify.py verify EVENTS.jsonl [--checkpoints CPS.jsonl] [--digest DIGEST.json]
      Recompute every event's canonical form and hash, each stream's chain,
      every checkpoint's Merkle root, hash, chain and signature, and compare
      with the stored values and with a digest kept outside.  Prints one line
      per tenant:  tenant ok checked target version event_id seq problem detail
      (tab-separated, as headlessly.verify() returns them); exits 1 if any
      tenant is not ok.
  hl_verify.py proof PROOF.json [--event EVENT.json] [--checkpoints CPS.jsonl]
                               [--digest DIGEST.json]
      Check an inclusion proof: the event's hash (recomputed from the event
      when given), its audit path to the checkpoint's root, the checkpoint's
      hash and signature, and, with a digest, the chain of checkpoints from
      the proof's to the digest's.
  hl_verify.py canonical EVENTS.jsonl
      Print each event's canonical form (hex) and hash.
  hl_verify.py vectors N SEED
      Print N random events as test vectors for the C (test/tamper/run.sh).
  hl_verify.py selftest
      Check this file against RFC 6962 and RFC 8032 test vectors.

Export format (one JSON object per line, in seq order), as the query in
test/tools/export.sql writes it:
  seq, version: numbers (version null without a target)
  id, tenant, type, target, actor, source, source_type, external_event_id,
  raw_payload: strings or null
  occurred_at, recorded_at: strings, as timestamptz prints them with
      TimeZone 'UTC' and DateStyle 'ISO' ("2026-01-15 10:00:00.123456+00",
      "4714-11-24 00:00:00+00 BC", "infinity", "-infinity")
  data, before, metadata: strings holding the jsonb's text (data::text), or null
  hash: the stored event hash, hex (optional)
  checkpoint: the number of the checkpoint that sealed the event (optional)

A checkpoint (one JSON object per line in CPS.jsonl, and inside a proof):
  tenant, number, prev_hash (hex), root (hex), count, first_seq, last_seq,
  hash (hex), and optionally signature and public_key (base64).

A digest: {"tenants": [checkpoint, ...]}: the latest checkpoint of each tenant.
"""

import argparse
import base64
import datetime
import hashlib
import json
import random
import re
import sys

MAGIC = b"hl-event-v1\n"
CHECKPOINT_MAGIC = b"hl-checkpoint-v1\n"
ZERO = bytes(32)

# The covered columns, in order, with how each is written as text.
FIELDS = [
    ("seq", "int"), ("id", "text"), ("tenant", "text"), ("type", "text"),
    ("target", "text"), ("version", "int"), ("actor", "text"), ("source", "text"),
    ("source_type", "text"), ("external_event_id", "text"),
    ("occurred_at", "timestamp"), ("recorded_at", "timestamp"),
    ("data", "json"), ("before", "json"), ("metadata", "json"),
    ("raw_payload", "text"),
]


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


# --- text forms --------------------------------------------------------------

EPOCH = datetime.datetime(1970, 1, 1)
DAYS_PER_400_YEARS = 146097


def timestamp_text(micros):
    """YYYY-MM-DDTHH:MM:SS.ffffffZ (astronomical years, at least 4 digits)."""
    days, rest = divmod(micros, 86400 * 10**6)
    # datetime knows years 1..9999 only: move by whole 400-year cycles, whose
    # calendars repeat exactly, and correct the year afterwards.
    cycles = 0
    while days < -700000:
        days += DAYS_PER_400_YEARS
        cycles -= 1
    while days > 2900000:
        days -= DAYS_PER_400_YEARS
        cycles += 1
    when = EPOCH + datetime.timedelta(days=days, microseconds=rest)
    year = when.year + 400 * cycles
    sign = "-" if year < 0 else ""
    return "%s%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (
        sign, abs(year), when.month, when.day, when.hour, when.minute,
        when.second, when.microsecond)


ISO_TIMESTAMP = re.compile(
    r"^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?\+00( BC)?$")


def timestamp_field(value):
    """The canonical text of a timestamptz printed in UTC with DateStyle ISO."""
    if value in ("infinity", "-infinity"):
        return value
    m = ISO_TIMESTAMP.match(value)
    if not m:
        raise ValueError("not a timestamptz printed in UTC with DateStyle ISO: %r" % value)
    year, month, day, hour, minute, second, fraction, bc = m.groups()
    year = int(year)
    if bc:
        year = 1 - year         # 1 BC is year 0, 2 BC is year -1
    sign = "-" if year < 0 else ""
    return "%s%04d-%s-%sT%s:%s:%s.%sZ" % (sign, abs(year), month, day, hour, minute,
                                          second, (fraction or "").ljust(6, "0"))


def field_text(kind, value):
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("not an integer: %r" % (value,))
        return str(value)
    if kind == "timestamp":
        return timestamp_field(value)
    if not isinstance(value, str):
        raise ValueError("not a string: %r" % (value,))
    return value


def canonical(event):
    out = bytearray(MAGIC)
    for name, kind in FIELDS:
        value = event.get(name)
        if value is None:
            out += b"\x00"
            continue
        data = field_text(kind, value).encode("utf-8")
        out += b"\x01" + len(data).to_bytes(4, "big") + data
    return bytes(out)


def event_hash(event, prev):
    return sha256(prev, canonical(event))


# --- RFC 6962 ------------------------------------------------------------------

def leaf_hash(data):
    return sha256(b"\x00", data)


def node_hash(left, right):
    return sha256(b"\x01", left, right)


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves):
    """RFC 6962 2.1 over leaf data."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path_sides(m, n):
    """For each audit path entry, deepest first: is the sibling on the left?"""
    sides = []
    while n > 1:
        k = split(n)
        if m < k:
            sides.append(False)
            n = k
        else:
            sides.append(True)
            m -= k
            n -= k
    return list(reversed(sides))


def root_from_path(m, n, leaf, path):
    if not 0 <= m < n:
        return None
    sides = path_sides(m, n)
    if len(sides) != len(path):
        return None
    r = leaf
    for sibling_left, p in zip(sides, path):
        r = node_hash(p, r) if sibling_left else node_hash(r, p)
    return r


def audit_path(m, leaves):
    """RFC 6962 2.1.1 PATH(m, D[n]) over leaf data."""
    if len(leaves) <= 1:
        return []
    k = split(len(leaves))
    if m < k:
        return audit_path(m, leaves[:k]) + [mth(leaves[k:])]
    return audit_path(m - k, leaves[k:]) + [mth(leaves[:k])]


# --- checkpoints -----------------------------------------------------------------

def checkpoint_hash(cp):
    tenant = cp["tenant"].encode("utf-8")

    def be64(v):
        return (v & (2**64 - 1)).to_bytes(8, "big")

    return sha256(CHECKPOINT_MAGIC, len(tenant).to_bytes(4, "big"), tenant,
                  be64(cp["number"]), bytes.fromhex(cp["prev_hash"]),
                  bytes.fromhex(cp["root"]), be64(cp["count"]),
                  be64(cp["first_seq"]), be64(cp["last_seq"]))


# --- Ed25519 verification (RFC 8032 5.1.7) ------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x & 1 != sign:
        x = P - x
    return x


def _decode_point(b):
    if len(b) != 32:
        return None
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


def _add(p1, p2):
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * 2 * D * t2 % P
    d = z1 * 2 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, point):
    result = (0, 1, 1, 0)
    while s:
        if s & 1:
            result = _add(result, point)
        point = _add(point, point)
        s >>= 1
    return result


def _equal(p1, p2):
    x1, y1, z1, _ = p1
    x2, y2, z2, _ = p2
    return (x1 * z2 - x2 * z1) % P == 0 and (y1 * z2 - y2 * z1) % P == 0


_BY = 4 * pow(5, P - 2, P) % P
BASE = (_recover_x(_BY, 0), _BY, 1, _recover_x(_BY, 0) * _BY % P)


def ed25519_verify(public_key, message, signature):
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decode_point(public_key)
    r = _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(),
                       "little") % L
    return _equal(_mul(s, BASE), _add(r, _mul(k, a)))


# --- verify --------------------------------------------------------------------------

class TenantResult:
    def __init__(self, tenant):
        self.tenant = tenant
        self.checked = 0
        self.problem = None     # (event, problem, detail)

    def fail(self, event, problem, detail):
        if self.problem is None:
            self.problem = (event, problem, detail)

    def line(self):
        if self.problem is None:
            return "\t".join([self.tenant, "t", str(self.checked), "", "", "", "", "", ""])
        event, problem, detail = self.problem
        event = event or {}

        def show(v):
            return "" if v is None else str(v)
        return "\t".join([self.tenant, "f", str(self.checked), show(event.get("target")),
                          show(event.get("version")), show(event.get("id")),
                          show(event.get("seq")), problem, detail])


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def verify_signature(cp):
    if "signature" not in cp and "public_key" not in cp:
        return True
    try:
        return ed25519_verify(base64.b64decode(cp["public_key"], validate=True),
                              bytes.fromhex(cp["hash"]),
                              base64.b64decode(cp["signature"], validate=True))
    except (KeyError, ValueError):
        return False


def chain_in_version_order(events):
    """Each stream event's hash, chained along its stream in version order
    (which is seq order, except in a log written by 0.1 or restored so by
    its owner): id(event) -> (hash, whether it is the stored one)."""
    streams = {}
    for ev in events:
        if ev.get("target") is not None:
            streams.setdefault((ev["tenant"], ev["target"]), []).append(ev)
    chained = {}
    for evs in streams.values():
        prev = ZERO             # the hash the next version chains on
        before = ZERO           # the one the last version chained on
        last_version = None
        for ev in sorted(evs, key=lambda e: (e.get("version") if isinstance(e.get("version"), int)
                                             else float("inf"), e["seq"])):
            version = ev.get("version")
            # a second event of a version (first in seq order wins) chains
            # like the first and is not chained on
            duplicate = version is not None and version == last_version
            link = before if duplicate else (ZERO if version == 1 else prev)
            try:
                h = event_hash(ev, link)
            except (ValueError, UnicodeEncodeError):
                continue
            stored = ev.get("hash")
            chained[id(ev)] = (h, stored is not None and bytes.fromhex(stored) == h)
            if not duplicate:
                before, prev, last_version = link, h, version
    return chained


def verify(events, checkpoints, digest):
    results = {}
    versions = {}               # stream -> {version: event}, to tell reordered from removed
    for ev in events:
        if ev.get("target") is not None:
            versions.setdefault((ev["tenant"], ev["target"]), {}).setdefault(ev.get("version"), ev)
    chained = chain_in_version_order(events)

    streams = {}                # (tenant, target) -> versions seen so far
    sealed = {}                 # (tenant, checkpoint number) -> [(event, hash)]
    last_seq = None
    for ev in events:
        tenant = ev["tenant"]
        res = results.setdefault(tenant, TenantResult(tenant))
        res.checked += 1
        if last_seq is not None and ev["seq"] <= last_seq:
            res.fail(ev, "reordered", "seq %d comes after seq %d" % (ev["seq"], last_seq))
        last_seq = ev["seq"]

        target = ev.get("target")
        if target is not None:
            key = (tenant, target)
            seen = streams.setdefault(key, set())
            version = ev.get("version")
            if not isinstance(version, int):
                res.fail(ev, "removed", "no version, in a stream that has %s" % sorted(seen))
            elif version < 1 or version in seen:
                res.fail(ev, "inserted", "version %s of a stream that has %s" % (version, sorted(seen)))
            elif version > 1 and version - 1 not in seen:
                below = versions[key].get(version - 1)
                if below is None:
                    res.fail(ev, "removed", "version %d is missing" % (version - 1))
                elif not chained.get(id(below), (None, False))[1]:
                    # comes before a lower version that does not verify either: swapped
                    res.fail(ev, "reordered", "version %d comes later, at seq %d"
                             % (version - 1, below["seq"]))
            if isinstance(version, int):
                seen.add(version)
        try:
            h = chained[id(ev)][0] if id(ev) in chained else event_hash(ev, ZERO)
        except (ValueError, UnicodeEncodeError) as e:
            res.fail(ev, "altered", "cannot be encoded: %s" % e)
            continue
        if "hash" in ev and ev["hash"] is not None and bytes.fromhex(ev["hash"]) != h:
            res.fail(ev, "altered", "stored hash %s, recomputed %s" % (ev["hash"], h.hex()))
        if ev.get("checkpoint") is not None:
            sealed.setdefault((tenant, ev["checkpoint"]), []).append((ev, h))

    by_tenant = {}
    for cp in checkpoints:
        by_tenant.setdefault(cp["tenant"], []).append(cp)
    for tenant, cps in by_tenant.items():
        res = results.setdefault(tenant, TenantResult(tenant))
        prev = ZERO
        for cp in sorted(cps, key=lambda c: c["number"]):
            members = sealed.get((tenant, cp["number"]), [])
            first_event = members[0][0] if members else None
            if bytes.fromhex(cp["prev_hash"]) != prev:
                res.fail(first_event, "altered",
                         "checkpoint %d does not follow the previous one" % cp["number"])
            if checkpoint_hash(cp) != bytes.fromhex(cp["hash"]):
                res.fail(first_event, "altered", "checkpoint %d's hash does not match its fields"
                         % cp["number"])
            if not verify_signature(cp):
                res.fail(first_event, "altered", "checkpoint %d's signature does not verify"
                         % cp["number"])
            root = mth([h for _, h in members])
            if root != bytes.fromhex(cp["root"]):
                if len(members) < cp["count"]:
                    problem = "removed"
                elif len(members) > cp["count"]:
                    problem = "inserted"
                else:
                    problem = "altered"
                res.fail(first_event, problem,
                         "checkpoint %d: %d events found, %d sealed; the root differs"
                         % (cp["number"], len(members), cp["count"]))
            elif members and (members[0][0]["seq"] != cp["first_seq"]
                              or members[-1][0]["seq"] != cp["last_seq"]
                              or len(members) != cp["count"]):
                res.fail(first_event, "altered", "checkpoint %d's bounds differ" % cp["number"])
            prev = bytes.fromhex(cp["hash"])

    if digest is not None:
        for kept in digest.get("tenants", []):
            tenant = kept["tenant"]
            res = results.setdefault(tenant, TenantResult(tenant))
            match = [cp for cp in by_tenant.get(tenant, []) if cp["number"] == kept["number"]]
            if not match or match[0]["hash"] != kept["hash"] or not verify_signature(kept):
                res.fail(None, "digest mismatch",
                         "the kept checkpoint %d is not in the log as it was" % kept["number"])
    return [results[t] for t in sorted(results)]


def check_proof(proof, event, checkpoints, digest):
    """Returns a list of problems, empty when the proof holds."""
    problems = []
    ev_hash = bytes.fromhex(proof["event_hash"])
    if event is not None:
        prev = bytes.fromhex(proof.get("prev_hash", ZERO.hex()))
        if event_hash(event, prev) != ev_hash:
            problems.append("the event does not hash to event_hash")
    root = root_from_path(proof["leaf_index"], proof["tree_size"], leaf_hash(ev_hash),
                          [bytes.fromhex(p) for p in proof["path"]])
    if root is None or root != bytes.fromhex(proof["root"]):
        problems.append("the audit path does not lead to the root")
    cp = proof["checkpoint"]
    if cp["root"] != proof["root"] or cp["count"] != proof["tree_size"]:
        problems.append("the checkpoint has another root or size")
    if checkpoint_hash(cp) != bytes.fromhex(cp["hash"]):
        problems.append("the checkpoint's hash does not match its fields")
    if not verify_signature(cp):
        problems.append("the checkpoint's signature does not verify")
    if digest is not None:
        kept = [k for k in digest.get("tenants", []) if k["tenant"] == cp["tenant"]]
        if not kept:
            problems.append("the digest has no checkpoint of this tenant")
        else:
            # follow the chain from the proof's checkpoint to the kept one
            chain = {c["number"]: c for c in checkpoints if c["tenant"] == cp["tenant"]}
            current = cp
            for c in sorted(chain.values(), key=lambda c: c["number"]):
                if c["number"] <= cp["number"] or c["number"] > kept[0]["number"]:
                    continue
                if c["prev_hash"] != current["hash"] or checkpoint_hash(c) != bytes.fromhex(c["hash"]):
                    break
                current = c
            if current["number"] != kept[0]["number"] or current["hash"] != kept[0]["hash"]:
                problems.append("digest mismatch: no chain of checkpoints leads to the kept one")
    return problems


# --- vectors for the C -------------------------------------------------------------------

def json_string_text(s):
    """A string as jsonb's output function escapes it."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jsonb_text(value):
    """jsonb's output text for a value built by random_json (numbers as strings)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(json_string_text(k) + ": " + jsonb_text(value[k])
                               for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, tuple):        # ("num", text)
        return value[1]
    return json_string_text(value)


def random_text(rnd, alphabet_only=False):
    pool = ["a", "Z", "0", " ", "\t", "\n", '"', "\\", "\x01", "\x1f", "\x7f", "é", "€",
            "😀", "/", "_", "-", "."]
    if alphabet_only:
        pool = ["a", "b", "Z", "0", "_", "-"]
    return "".join(rnd.choice(pool) for _ in range(rnd.randrange(0, 12)))


def random_number(rnd):
    whole = str(rnd.randrange(0, 10**rnd.randrange(1, 25)))
    text = whole
    if rnd.random() < 0.5:
        text += "." + "".join(rnd.choice("0123456789") for _ in range(rnd.randrange(1, 8)))
    if rnd.random() < 0.3 and text.strip("0.") != "":
        text = "-" + text
    return ("num", text)


def random_json(rnd, depth=0):
    r = rnd.random()
    if depth < 3 and r < 0.3:
        return {random_text(rnd): random_json(rnd, depth + 1) for _ in range(rnd.randrange(0, 5))}
    if depth < 3 and r < 0.45:
        return [random_json(rnd, depth + 1) for _ in range(rnd.randrange(0, 4))]
    return rnd.choice([None, True, False, random_number(rnd), random_text(rnd)])


PG_EPOCH_MICROS = 946684800 * 10**6     # 2000-01-01, where timestamptz counts from


def random_micros(rnd):
    """Unix microseconds of a finite timestamptz: its int64 minus the infinities."""
    return PG_EPOCH_MICROS + random_pg_micros(rnd)


def random_pg_micros(rnd):
    r = rnd.random()
    if r < 0.05:
        return rnd.choice([-(2**63) + 1, 2**63 - 2, 0, -1])
    if r < 0.3:
        return rnd.randrange(-(2**63) + 1, 2**63 - 1)
    # 1900..2100, around 2000 (PostgreSQL's epoch) and 1970
    return rnd.randrange(-3155760000 * 10**6, 3155760000 * 10**6)


def vectors(n, seed):
    rnd = random.Random(seed)
    for _ in range(n):
        fields = []
        for name, kind in FIELDS:
            required = name in ("seq", "id", "tenant", "type", "occurred_at",
                                "recorded_at", "data")
            if not required and rnd.random() < 0.3:
                fields.append(None)
            elif kind == "int":
                fields.append(str(rnd.choice([rnd.randrange(1, 10**6),
                                              rnd.randrange(-(2**63), 2**63)])))
            elif kind == "timestamp":
                if rnd.random() < 0.05:
                    fields.append(rnd.choice(["infinity", "-infinity"]))
                else:
                    fields.append(timestamp_text(random_micros(rnd)))
            elif kind == "json":
                value = random_json(rnd)
                if name == "data" and not isinstance(value, dict):
                    value = {"v": value}
                fields.append(jsonb_text(value))
            else:
                fields.append(random_text(rnd, alphabet_only=(name == "id")) or "x")
        out = bytearray(MAGIC)
        for value in fields:
            if value is None:
                out += b"\x00"
            else:
                data = value.encode("utf-8")
                out += b"\x01" + len(data).to_bytes(4, "big") + data
        prev = ZERO if rnd.random() < 0.3 else bytes(rnd.randrange(256) for _ in range(32))
        h = sha256(prev, bytes(out))
        cols = ["-" if v is None else v.encode("utf-8").hex() for v in fields]
        print("\t".join(cols + [bytes(out).hex(), prev.hex(), h.hex()]))


# --- self test ----------------------------------------------------------------------------

def selftest():
    failures = 0
    passed = 0

    def check(ok, what):
        nonlocal failures, passed
        if ok:
            passed += 1
        else:
            failures += 1
        print("%s - %s" % ("ok" if ok else "not ok", what))

    # Certificate Transparency's vectors (transparency-dev/merkle)
    leaves = [bytes.fromhex(x) for x in [
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
        "606162636465666768696a6b6c6d6e6f"]]
    roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
    check(mth([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "RFC 6962: empty tree")
    check(all(mth(leaves[:n]).hex() == roots[n - 1] for n in range(1, 9)),
          "CT vectors: roots of 1..8 leaves")
    path = audit_path(5, leaves)
    check([p.hex() for p in path] == [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
        "CT vectors: audit path of leaf 5 of 8")
    ok = True
    for n in range(1, 40):
        for m in range(n):
            ok = ok and root_from_path(m, n, leaf_hash(leaves[m % 8] + bytes([m])),
                                       audit_path(m, [leaves[i % 8] + bytes([i]) for i in range(n)])) \
                == mth([leaves[i % 8] + bytes([i]) for i in range(n)])
    check(ok, "every audit path of trees up to 39 leaves leads to the root")

    # RFC 8032 7.1, TEST 1 and TEST 2
    check(ed25519_verify(
        bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"), b"",
        bytes.fromhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")),
        "RFC 8032 test 1 verifies")
    check(ed25519_verify(
        bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"), b"\x72",
        bytes.fromhex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")),
        "RFC 8032 test 2 verifies")
    check(not ed25519_verify(
        bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"), b"\x73",
        bytes.fromhex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")),
        "RFC 8032 test 2 does not verify another message")

    check(timestamp_text(0) == "1970-01-01T00:00:00.000000Z", "timestamp: 1970")
    check(timestamp_field("2000-01-01 00:00:00.00001+00") == "2000-01-01T00:00:00.000010Z",
          "timestamp: ISO text with a short fraction")
    check(timestamp_field("4714-11-24 00:00:00+00 BC") == "-4713-11-24T00:00:00.000000Z",
          "timestamp: 4714 BC is astronomical year -4713")
    check(timestamp_field("0001-01-01 00:00:00+00 BC") == "0000-01-01T00:00:00.000000Z",
          "timestamp: 1 BC is year 0000")
    check(timestamp_field("294276-12-31 23:59:59.999999+00") == "294276-12-31T23:59:59.999999Z",
          "timestamp: the last one PostgreSQL has")
    check(timestamp_text(-62198755200 * 10**6) == "-0001-01-01T00:00:00.000000Z",
          "timestamp: 2 BC is year -0001")
    print("%d passed, %d failed" % (passed, failures))
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify")
    v.add_argument("events")
    v.add_argument("--checkpoints")
    v.add_argument("--digest")
    p = sub.add_parser("proof")
    p.add_argument("proof")
    p.add_argument("--event")
    p.add_argument("--checkpoints")
    p.add_argument("--digest")
    c = sub.add_parser("canonical")
    c.add_argument("events")
    g = sub.add_parser("vectors")
    g.add_argument("n", type=int)
    g.add_argument("seed", type=int)
    sub.add_parser("selftest")
    args = parser.parse_args()

    if args.command == "selftest":
        return selftest()
    if args.command == "vectors":
        vectors(args.n, args.seed)
        return 0
    if args.command == "canonical":
        streams = {}
        for ev in read_jsonl(args.events):
            key = (ev["tenant"], ev.get("target"))
            prev = streams.get(key, ZERO) if ev.get("target") is not None else ZERO
            h = event_hash(ev, prev)
            if ev.get("target") is not None:
                streams[key] = h
            print("%s\t%s\t%s" % (ev["id"], canonical(ev).hex(), h.hex()))
        return 0
    checkpoints = read_jsonl(args.checkpoints) if args.checkpoints else []
    digest = None
    if args.digest:
        with open(args.digest, encoding="utf-8") as f:
            digest = json.load(f)
    if args.command == "verify":
        results = verify(read_jsonl(args.events), checkpoints, digest)
        for r in results:
            print(r.line())
        return 0 if all(r.problem is None for r in results) else 1
    with open(args.proof, encoding="utf-8") as f:
        proof = json.load(f)
    event = None
    if args.event:
        with open(args.event, encoding="utf-8") as f:
            event = json.load(f)
    problems = check_proof(proof, event, checkpoints, digest)
    for problem in problems:
        print("not ok: %s" % problem)
    if not problems:
        print("ok: event hash %s is leaf %d of %d under checkpoint %d of tenant %s"
              % (proof["event_hash"], proof["leaf_index"], proof["tree_size"],
                 proof["checkpoint"]["number"], proof["checkpoint"]["tenant"]))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
