"""The descriptor pool the generated protobuf modules register in, instead of protobuf's default pool.

AICO's own code defines aico.core.LogEntry and aico.core.AicoMessage in .proto files of its own; two files
defining one name in the default pool make the second import fail with "duplicate symbol". A pool of our own keeps
this package importable next to AICO's generated code. It holds the well-known types our files import.
"""

from google.protobuf import any_pb2, descriptor_pool, timestamp_pb2

POOL = descriptor_pool.DescriptorPool()
for _dependency in (timestamp_pb2, any_pb2):
    POOL.AddSerializedFile(_dependency.DESCRIPTOR.serialized_pb)
