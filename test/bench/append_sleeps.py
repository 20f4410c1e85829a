"""What the backends of run-append-waits.sh slept on, from `perf script`.

Reads perf script's output of sched:sched_switch (with DWARF stacks),
sched:sched_wakeup and the _bt_doinsert uprobe (relid=) on stdin.  A sleep
is a backend's switch out that is not a preemption (prev_state R).  One
under LWLockAcquire is charged to the first frame above it that says what
was locked (WHAT), and a btree insert's to the index of that backend's
latest _bt_doinsert; it lasts until the backend is woken (LWLocks are
handed over by other backends, whose wakeups are recorded too).
Usage: perf script | python3 append_sleeps.py INDEXES CLIENTS SECONDS
(INDEXES: lines "oid relname").
"""
import re
import sys
from collections import Counter, defaultdict

WHAT = re.compile(r"^(_bt_split|_bt_getroot|_bt_doinsert|_bt_check_unique|heap_insert|heap_update|"
                  r"heap_lock_tuple|RelationGetBufferForTuple|nextval_internal|XLogInsert|"
                  r"AdvanceXLInsertBuffer|ProcArrayEndTransaction|LockAcquireExtended|"
                  r"TransactionIdSetTreeStatus|hl_[a-z_]+|index_fetch_heap|_bt_first|index_insert)$")
LWLOCK = {"LWLockAcquire", "LWLockAcquireOrWait", "LWLockWaitForVar"}
OTHER_WAITS = re.compile(r"^(ProcSleep|ConditionVariableSleep|WaitEventSetWait|XLogFlush|"
                         r"perform_spin_delay|pg_usleep)$")
HEAD = re.compile(r"^\s*(\S+)\s+(\d+)\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s*(.*)$")

names = dict(line.split() for line in open(sys.argv[1]) if line.strip())
clients, seconds = int(sys.argv[2]), float(sys.argv[3])
kinds, count, slept = Counter(), Counter(), defaultdict(float)
last_index, pending = {}, {}


def switched_out(pid, ts, rest, stack):
    if "prev_state=R" in rest:
        kinds["preempted (runnable)"] += 1
        return
    why, key = None, None
    for f in stack:
        if why is None and f in LWLOCK:
            why = "LWLock"
        elif why is None and OTHER_WAITS.match(f):
            why = f
        elif why == "LWLock" and key is None and WHAT.match(f):
            key = f
    kinds[why or "(other)"] += 1
    if why == "LWLock":
        key = key or "(other)"
        if key == "_bt_doinsert" and pid in last_index:
            key += " " + names.get(last_index[pid], last_index[pid])
        count[key] += 1
        pending[pid] = (ts, key)


event, stack = None, []
for line in list(sys.stdin) + [""]:
    m = HEAD.match(line)
    if m or not line.strip():
        if event is not None and event[3].endswith("sched_switch"):
            switched_out(event[1], event[2], event[4], stack)
        event, stack = None, []
        if not m:
            continue
        comm, pid, ts, name, rest = m.group(1), m.group(2), float(m.group(3)), m.group(4), m.group(5)
        if name.endswith("_bt_doinsert"):
            r = re.search(r"relid=(\d+)", rest)
            if r:
                last_index[pid] = r.group(1)
        elif name.endswith("sched_wakeup"):
            r = re.search(r"pid=(\d+)", rest)
            if r and r.group(1) in pending:
                started, key = pending.pop(r.group(1))
                slept[key] += ts - started
        else:
            event = (comm, pid, ts, name, rest)
    elif event is not None:
        parts = line.split()
        if len(parts) >= 2:
            stack.append(re.sub(r"\+0x.*", "", parts[1]))

total = sum(kinds.values())
print(f"  switches out: {total}")
for k, n in kinds.most_common():
    print(f"  {100 * n / total:6.1f}%  {k}")
backend_time = clients * seconds
all_slept = sum(slept.values())
print(f"  LWLock sleeps: {sum(count.values())}, {all_slept:.2f} s in all, "
      f"{100 * all_slept / backend_time:.1f}% of the backends' time ({clients} x {seconds:g} s):")
for k, n in count.most_common():
    print(f"    {n:6d} sleeps  {slept[k]:7.3f} s  {100 * slept[k] / backend_time:5.1f}% of the time  {k}")
