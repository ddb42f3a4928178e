"""Reads debug files the way a user would, independently of the C++ reader, and prints JSON.

  read_debug_files.py arrow FILE...     pyarrow + DuckDB: rows, the `id` column, DuckDB's count/sum
  read_debug_files.py protobuf FILE...  length-delimited records decoded with the .desc beside them
"""
import json
import sys

import duckdb
import pyarrow as pa
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def read_arrow(path):
    with pa.OSFile(path, "rb") as f:
        table = pa.ipc.open_stream(f).read_all()
    con = duckdb.connect()
    con.register("debug_rows", table)
    count, id_sum = con.execute("SELECT count(*), sum(id) FROM debug_rows").fetchone()
    return {
        "path": path,
        "rows": table.num_rows,
        "ids": table.column("id").to_pylist(),
        "columns": table.schema.names,
        "duckdb_rows": count,
        "duckdb_id_sum": int(id_sum) if id_sum is not None else None,
    }


def read_varint(data, pos):
    shift = 0
    value = 0
    while True:
        if pos >= len(data):
            raise ValueError(f"truncated length at byte {pos}")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def read_protobuf(path):
    assert path.endswith(".pb"), path
    with open(path[:-3] + ".desc", "rb") as f:
        desc = descriptor_pb2.DescriptorProto.FromString(f.read())
    file_proto = descriptor_pb2.FileDescriptorProto(name=f"debug_{desc.name}.proto", syntax="proto2")
    file_proto.message_type.add().CopyFrom(desc)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(desc.name))
    with open(path, "rb") as f:
        data = f.read()
    records = []
    pos = 0
    while pos < len(data):
        length, pos = read_varint(data, pos)
        if pos + length > len(data):
            raise ValueError(f"truncated record at byte {pos}")
        msg = cls.FromString(data[pos:pos + length])
        records.append(json_format.MessageToDict(msg, preserving_proto_field_name=True))
        pos += length
    return {"path": path, "message": desc.name, "records": records}


def main():
    kind, paths = sys.argv[1], sys.argv[2:]
    reader = {"arrow": read_arrow, "protobuf": read_protobuf}[kind]
    print(json.dumps({"files": [reader(p) for p in paths]}))


if __name__ == "__main__":
    main()
