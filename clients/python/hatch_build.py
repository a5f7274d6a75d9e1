"""Build hook: the protobuf code comes from the repository's .proto files when the package is built, so there is
no second copy of the schema. protoc is grpcio-tools' (a build requirement). The generated modules register their
descriptors in a pool of the package's own (aixcl_logging/_pool.py) instead of protobuf's default pool: AICO
defines aico.core.LogEntry in its own .proto file, and two files defining one name in the default pool make the
second import fail with "duplicate symbol".
"""

from __future__ import annotations

import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PROTOS = ("aico/core/log_entry.proto", "aico/core/message.proto")
DEFAULT_POOL = "_descriptor_pool.Default().AddSerializedFile("
OWN_POOL = "_POOL.AddSerializedFile("


def proto_root(project: Path) -> Path:
    """packages/wire/proto in a checkout; proto/ in an sdist, which carries a copy made by this hook."""
    for candidate in (project / "proto", project.parent.parent / "packages" / "wire" / "proto"):
        if all((candidate / name).is_file() for name in PROTOS):
            return candidate
    raise RuntimeError(
        f"aixcl-logging: no {PROTOS[0]} next to {project}: build from the aixcl-logging repository "
        "(pip install ./clients/python) or from its sdist"
    )


def generate(root: Path, out: Path) -> None:
    from grpc_tools import protoc  # a build requirement, imported only when building

    well_known = resources.files("grpc_tools") / "_proto"
    args = ["protoc", f"-I{root}", f"-I{well_known}", f"--python_out={out}", f"--pyi_out={out}", *PROTOS]
    if protoc.main(args) != 0:
        raise RuntimeError(f"aixcl-logging: protoc failed on {', '.join(PROTOS)} in {root}")
    for module in out.glob("aico/core/*_pb2.py"):
        code = module.read_text()
        if code.count(DEFAULT_POOL) != 1:
            raise RuntimeError(f"aixcl-logging: {module.name} does not add its descriptor to the default pool exactly once; this protoc's output is not what the build expects")
        code = code.replace(DEFAULT_POOL, OWN_POOL)
        # After the generated imports, before the descriptor is added.
        code = code.replace("\n_sym_db = ", "\nfrom aixcl_logging._pool import POOL as _POOL\n_sym_db = ", 1)
        module.write_text(code)


def license_file(project: Path) -> Path:
    """The repository's LICENSE in a checkout; the sdist's own copy (made by this hook) in an sdist."""
    for candidate in (project / "LICENSE", project.parent.parent / "LICENSE"):
        if candidate.is_file():
            return candidate
    raise RuntimeError(f"aixcl-logging: no LICENSE in {project} or the repository around it")


class ProtoBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        project = Path(self.root)
        root = proto_root(project)
        # The licence travels with both artifacts: at the sdist's root, and inside the package in the wheel.
        build_data["force_include"][str(license_file(project))] = "LICENSE" if self.target_name == "sdist" else "aixcl_logging/LICENSE"
        if self.target_name == "sdist":
            for name in PROTOS:
                build_data["force_include"][str(root / name)] = f"proto/{name}"
            return
        self._out = Path(tempfile.mkdtemp(prefix="aixcl-logging-proto-"))
        generate(root, self._out)
        for module in sorted(self._out.glob("aico/core/*_pb2.py*")):
            build_data["force_include"][str(module)] = f"aixcl_logging/_proto/{module.name}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        out = getattr(self, "_out", None)
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)
