"""Baseline for bench_e2e and bench_e2e_flight: the vendor's Python SDK
(databricks-zerobus-ingest-sdk) sending the benchmark's rows into the emulator, then `flush()`:
- record stream (--rows, --descriptor): pre-encoded protobuf rows with its batch API
  (`ingest_records_offset`, one call per 64k-row batch);
- Arrow stream (--arrow): the batches of an Arrow IPC file with `create_arrow_stream` and
  `ingest_batch`, one call per batch.
Reading the input (into lists of bytes, or pyarrow batches in memory) happens before the clock
starts.

With --streams N the batches are dealt round robin to N streams (as bench_e2e deals its chunks),
each stream fed and flushed by its own thread; the time runs from the first call to the last
flush.

Prints one line: {"vendor": {"rows": n, "seconds": s, "cpu_seconds": c, "rows_per_s": r}}
(cpu_seconds: this process's CPU time in the timed part, all threads, Rust core included).
The client secret comes from AZ_VENDOR_CLIENT_SECRET.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import threading
import time


def read_batches(path: str) -> list[list[bytes]]:
    data = memoryview(open(path, "rb").read())
    batches = []
    pos = 0
    while pos < len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        records = []
        for _ in range(n):
            (length,) = struct.unpack_from("<I", data, pos)
            pos += 4
            records.append(bytes(data[pos:pos + length]))
            pos += length
        batches.append(records)
    return batches


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--uc-url", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--rows", help="records file (record stream)")
    p.add_argument("--descriptor", help="serialized FileDescriptorProto (record stream)")
    p.add_argument("--arrow", help="Arrow IPC file of record batches (Arrow stream)")
    p.add_argument("--streams", type=int, default=1)
    args = p.parse_args()
    if (args.arrow is None) == (args.rows is None or args.descriptor is None):
        p.error("give either --arrow, or --rows and --descriptor")

    from zerobus.sdk.sync import ZerobusSdk

    sdk = ZerobusSdk(args.endpoint, args.uc_url)
    secret = os.environ["AZ_VENDOR_CLIENT_SECRET"]
    if args.arrow is not None:
        import pyarrow as pa
        from zerobus.sdk.shared.arrow import ArrowStreamConfigurationOptions

        with pa.memory_map(args.arrow) as source:
            reader = pa.ipc.open_file(source)
            batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
            schema = reader.schema
        batches = [pa.concat_batches([b]) for b in batches]  # copies out of the mapped file
        rows = sum(b.num_rows for b in batches)
        streams = [sdk.create_arrow_stream(args.table, schema, args.client_id, secret,
                                           ArrowStreamConfigurationOptions())
                   for _ in range(args.streams)]
        warm_up = batches[0].slice(0, 1000)
        ingest = "ingest_batch"
    else:
        from google.protobuf import descriptor_pb2, descriptor_pool
        from zerobus.sdk.sync import StreamConfigurationOptions, TableProperties

        fdp = descriptor_pb2.FileDescriptorProto()
        fdp.ParseFromString(open(args.descriptor, "rb").read())
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fdp)
        descriptor = pool.FindMessageTypeByName(fdp.message_type[0].name)
        batches = read_batches(args.rows)
        rows = sum(len(b) for b in batches)
        streams = [sdk.create_stream(args.client_id, secret,
                                     TableProperties(args.table, descriptor),
                                     StreamConfigurationOptions())
                   for _ in range(args.streams)]
        warm_up = batches[0][:1000]
        ingest = "ingest_records_offset"
    # One untimed small batch per stream so connection setup is not counted.
    for stream in streams:
        getattr(stream, ingest)(warm_up)
        stream.flush()

    errors = []

    def feed(stream, mine):
        try:
            send = getattr(stream, ingest)
            for b in mine:
                send(b)
            stream.flush()
        except Exception as e:  # reported after the join: a failed run has no rate
            errors.append(e)

    threads = [threading.Thread(target=feed, args=(s, batches[i::len(streams)]))
               for i, s in enumerate(streams)]
    start = time.perf_counter()
    cpu_start = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    if errors:
        raise errors[0]
    for stream in streams:
        stream.close()
    print(json.dumps({"vendor": {"rows": rows, "seconds": seconds, "cpu_seconds": cpu_seconds,
                                 "rows_per_s": rows / seconds}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
