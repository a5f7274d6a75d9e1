"""log_entry_pb2 and message_pb2, generated from packages/wire/proto when the package is built (hatch_build.py)."""
