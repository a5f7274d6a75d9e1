import subprocess
import sys
import textwrap

from aixcl_logging._proto import log_entry_pb2, message_pb2
from aixcl_logging.wire import LOG_ENTRY_TYPE_URL, Entry, encode


def full_entry() -> Entry:
    return Entry(
        timestamp_ns=1_763_700_000_123_456_789,
        level=30,
        subsystem="api_gateway",
        module="auth",
        topic="logs.api_gateway.auth",
        message="token expired ✓",
        function="verify",
        file_path="src/auth.py",
        line_number=118,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        session_id="sess-9",
        user_uuid="5b0c3f0e",
        metadata={"logger": "auth"},
        extra={"attempt": "3"},
    )


def test_a_bare_entry_carries_every_field() -> None:
    decoded = log_entry_pb2.LogEntry.FromString(encode(full_entry(), "aixcl"))
    assert (decoded.timestamp.seconds, decoded.timestamp.nanos) == (1_763_700_000, 123_456_789)
    assert (decoded.level, decoded.subsystem, decoded.module, decoded.topic, decoded.message) == (30, "api_gateway", "auth", "logs.api_gateway.auth", "token expired ✓")
    assert (decoded.function, decoded.file_path, decoded.line_number) == ("verify", "src/auth.py", 118)
    assert (decoded.trace_id, decoded.session_id, decoded.user_uuid) == ("4bf92f3577b34da6a3ce929d0e0e4736", "sess-9", "5b0c3f0e")
    assert (dict(decoded.metadata), dict(decoded.extra)) == ({"logger": "auth"}, {"attempt": "3"})


def test_the_aico_format_packs_the_entry_into_aicos_envelope() -> None:
    envelope = message_pb2.AicoMessage.FromString(encode(full_entry(), "aico"))
    assert envelope.any_payload.type_url == LOG_ENTRY_TYPE_URL
    assert (envelope.metadata.source, envelope.metadata.message_type, envelope.metadata.version) == ("api_gateway", "aico.core.LogEntry", "v1")
    assert len(envelope.metadata.message_id) == 36
    assert log_entry_pb2.LogEntry.FromString(envelope.any_payload.value).message == "token expired ✓"


def test_importable_next_to_aicos_own_aico_core_log_entry_in_the_default_pool() -> None:
    """AICO's generated code registers aico.core.LogEntry (in core/logging.proto) in protobuf's default pool. Our
    generated modules use a pool of their own; were they in the default pool, importing both would fail."""
    script = textwrap.dedent(
        """
        from google.protobuf import descriptor_pb2, descriptor_pool
        aico = descriptor_pb2.FileDescriptorProto(name="core/logging.proto", package="aico.core", syntax="proto3")
        message = aico.message_type.add(name="LogEntry")
        message.field.add(name="message", number=6, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING)
        descriptor_pool.Default().Add(aico)

        from aixcl_logging._proto import log_entry_pb2
        from aixcl_logging.wire import Entry, encode
        payload = encode(Entry(timestamp_ns=1, level=20, subsystem="s", module="m", topic="t", message="next to AICO"), "aixcl")
        assert log_entry_pb2.LogEntry.FromString(payload).message == "next to AICO"
        try:
            descriptor_pool.Default().AddSerializedFile(log_entry_pb2.DESCRIPTOR.serialized_pb)
        except Exception as error:
            print("default pool refuses a second aico.core.LogEntry:", error)
        else:
            raise SystemExit("the default pool accepted a second aico.core.LogEntry: this test no longer shows the conflict")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "duplicate" in result.stdout.lower() or "already" in result.stdout.lower(), result.stdout
