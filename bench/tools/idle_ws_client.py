#!/usr/bin/env python3
"""Open N idle WebSocket connections with the `websockets` library, hold them, and report how
much the server's resident memory (VmRSS summed over the server process and its descendants)
grew. An outside check on `switchboard-bench idle` that shares none of its code.

    python idle_ws_client.py --url ws://127.0.0.1:18004/websocket --server-pid PID \
        --connections 2000 --concurrency 100 --settle 2 --hold 3 [--warm-up 200] [--no-deflate]

--concurrency is the number of handshakes in flight; 0 opens every connection at once
(one asyncio task each, all started together). --warm-up opens and closes that many connections
first and takes the baseline after them. Prints one JSON object.
"""

import argparse
import asyncio
import json
import os
import time

from websockets.asyncio.client import connect


def tree_pids(pid):
    pids, frontier = [pid], [pid]
    while frontier:
        nxt = []
        for p in frontier:
            try:
                for task in os.listdir(f"/proc/{p}/task"):
                    with open(f"/proc/{p}/task/{task}/children") as f:
                        nxt += [int(c) for c in f.read().split()]
            except OSError:
                pass
        pids += nxt
        frontier = nxt
    return pids


def tree_rss_bytes(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


async def open_one(url, first_frames, gate, compression):
    async with gate:
        # `websockets` offers permessage-deflate by default, as browsers do; --no-deflate does not.
        ws = await connect(
            url, ping_interval=None, open_timeout=60, max_queue=16, compression=compression
        )
        # The server's first frame (Jac Cloud: {"type":"connection",...}); read it so the
        # connection is fully set up, as a real client would.
        first_frames.append(await asyncio.wait_for(ws.recv(), 60))
        return ws


async def open_many(url, n, concurrency, compression):
    gate = asyncio.Semaphore(concurrency if concurrency > 0 else n)
    first_frames = []
    results = await asyncio.gather(
        *(open_one(url, first_frames, gate, compression) for _ in range(n)), return_exceptions=True
    )
    conns = [r for r in results if not isinstance(r, BaseException)]
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    return conns, errors, first_frames


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--warm-up", type=int, default=0)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--no-deflate", action="store_true", help="do not offer permessage-deflate")
    args = ap.parse_args()
    compression = None if args.no_deflate else "deflate"

    out = {"args": vars(args), "rss_start_bytes": tree_rss_bytes(args.server_pid)}
    if args.warm_up:
        conns, errors, _ = await open_many(args.url, args.warm_up, args.concurrency, compression)
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        out["warm_up_ok"] = len(conns)
        await asyncio.sleep(1)
    before = tree_rss_bytes(args.server_pid)
    out["rss_before_bytes"] = before
    t0 = time.monotonic()
    conns, errors, first_frames = await open_many(
        args.url, args.connections, args.concurrency, compression
    )
    out["open_secs"] = round(time.monotonic() - t0, 3)
    out["connections_ok"] = len(conns)
    out["connections_failed"] = len(errors)
    if errors:
        out["first_error"] = errors[0][:300]
    out["first_frame_sample"] = first_frames[0][:200] if first_frames else None
    if conns:
        out["extensions"] = conns[0].response.headers.get("Sec-WebSocket-Extensions")
    await asyncio.sleep(args.settle)
    settled = tree_rss_bytes(args.server_pid)
    await asyncio.sleep(args.hold)
    held = tree_rss_bytes(args.server_pid)
    n = max(len(conns), 1)
    out["rss_after_settle_bytes"] = settled
    out["rss_after_hold_bytes"] = held
    out["rss_per_conn_bytes"] = round((held - before) / n)
    out["rss_per_conn_from_start_bytes"] = round((held - out["rss_start_bytes"]) / n)
    out["alive_after_hold"] = sum(1 for c in conns if c.state.name == "OPEN")
    print(json.dumps(out, indent=1))
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
