"""Baseline for bench_e2e: the vendor's Python SDK (databricks-zerobus-ingest-sdk) ingesting
pre-encoded protobuf rows with its batch API (`ingest_records_offset`, one call per 64k-row
batch) into the emulator, then `flush()`. Reading the rows file and building the lists of bytes
happens before the clock starts.

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
    p.add_argument("--rows", required=True)
    p.add_argument("--descriptor", required=True, help="serialized FileDescriptorProto")
    args = p.parse_args()

    from google.protobuf import descriptor_pb2, descriptor_pool
    from zerobus.sdk.sync import StreamConfigurationOptions, TableProperties, ZerobusSdk

    fdp = descriptor_pb2.FileDescriptorProto()
    fdp.ParseFromString(open(args.descriptor, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    descriptor = pool.FindMessageTypeByName(fdp.message_type[0].name)

    batches = read_batches(args.rows)
    rows = sum(len(b) for b in batches)

    sdk = ZerobusSdk(args.endpoint, args.uc_url)
    options = StreamConfigurationOptions()
    stream = sdk.create_stream(args.client_id, os.environ["AZ_VENDOR_CLIENT_SECRET"],
                               TableProperties(args.table, descriptor), options)
    # One untimed batch so connection setup is not counted.
    stream.ingest_records_offset(batches[0][:1000])
    stream.flush()

    start = time.perf_counter()
    cpu_start = time.process_time()
    for b in batches:
        stream.ingest_records_offset(b)
    stream.flush()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    stream.close()
    print(json.dumps({"vendor": {"rows": rows, "seconds": seconds, "cpu_seconds": cpu_seconds,
                                 "rows_per_s": rows / seconds}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
