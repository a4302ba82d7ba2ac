# SPDX-License-Identifier: GPL-3.0-or-later
"""A minimal CRI (runtime.v1) client: the few messages a kubelet sends for pod sandboxes.

The messages are declared here from the CRI v1 API's field definitions
(k8s.io/cri-api, package runtime.v1): only the fields these tests use, with
the API's field numbers, so the wire format is the kubelet's. They are built
at import time into a private descriptor pool; no generated code, no stubs:
each RPC is a plain unary call on its full method name.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "runtime.v1"

# name -> values, as in the API
ENUMS: Dict[str, List[Tuple[str, int]]] = {
    "Protocol": [("TCP", 0), ("UDP", 1), ("SCTP", 2)],
    "NamespaceMode": [("POD", 0), ("CONTAINER", 1), ("NODE", 2), ("TARGET", 3)],
    "PodSandboxState": [("SANDBOX_READY", 0), ("SANDBOX_NOTREADY", 1)],
}

# message -> [(field, number, type)]; type: a scalar name, "map" (map<string,string>),
# "[]T" (repeated), or a message/enum name from this file.
MESSAGES: Dict[str, List[Tuple[str, int, str]]] = {
    "VersionRequest": [("version", 1, "string")],
    "VersionResponse": [("version", 1, "string"), ("runtime_name", 2, "string"), ("runtime_version", 3, "string"),
                        ("runtime_api_version", 4, "string")],
    "RuntimeCondition": [("type", 1, "string"), ("status", 2, "bool"), ("reason", 3, "string"), ("message", 4, "string")],
    "RuntimeStatus": [("conditions", 1, "[]RuntimeCondition")],
    "StatusRequest": [("verbose", 1, "bool")],
    "StatusResponse": [("status", 1, "RuntimeStatus"), ("info", 2, "map")],
    "DNSConfig": [("servers", 1, "[]string"), ("searches", 2, "[]string"), ("options", 3, "[]string")],
    "PortMapping": [("protocol", 1, "Protocol"), ("container_port", 2, "int32"), ("host_port", 3, "int32"), ("host_ip", 4, "string")],
    "NamespaceOption": [("network", 1, "NamespaceMode"), ("pid", 2, "NamespaceMode"), ("ipc", 3, "NamespaceMode")],
    "LinuxSandboxSecurityContext": [("namespace_options", 1, "NamespaceOption")],
    "LinuxPodSandboxConfig": [("cgroup_parent", 1, "string"), ("security_context", 2, "LinuxSandboxSecurityContext"),
                              ("sysctls", 3, "map")],
    "PodSandboxMetadata": [("name", 1, "string"), ("uid", 2, "string"), ("namespace", 3, "string"), ("attempt", 4, "uint32")],
    "PodSandboxConfig": [("metadata", 1, "PodSandboxMetadata"), ("hostname", 2, "string"), ("log_directory", 3, "string"),
                         ("dns_config", 4, "DNSConfig"), ("port_mappings", 5, "[]PortMapping"), ("labels", 6, "map"),
                         ("annotations", 7, "map"), ("linux", 8, "LinuxPodSandboxConfig")],
    "RunPodSandboxRequest": [("config", 1, "PodSandboxConfig"), ("runtime_handler", 2, "string")],
    "RunPodSandboxResponse": [("pod_sandbox_id", 1, "string")],
    "StopPodSandboxRequest": [("pod_sandbox_id", 1, "string")],
    "StopPodSandboxResponse": [],
    "RemovePodSandboxRequest": [("pod_sandbox_id", 1, "string")],
    "RemovePodSandboxResponse": [],
    "PodSandboxStatusRequest": [("pod_sandbox_id", 1, "string"), ("verbose", 2, "bool")],
    "PodIP": [("ip", 1, "string")],
    "PodSandboxNetworkStatus": [("ip", 1, "string"), ("additional_ips", 2, "[]PodIP")],
    "PodSandboxStatus": [("id", 1, "string"), ("metadata", 2, "PodSandboxMetadata"), ("state", 3, "PodSandboxState"),
                         ("created_at", 4, "int64"), ("network", 5, "PodSandboxNetworkStatus"), ("labels", 7, "map"),
                         ("annotations", 8, "map")],
    "PodSandboxStatusResponse": [("status", 1, "PodSandboxStatus"), ("info", 2, "map")],
    "PodSandboxFilter": [("id", 1, "string"), ("label_selector", 3, "map")],
    "ListPodSandboxRequest": [("filter", 1, "PodSandboxFilter")],
    "PodSandbox": [("id", 1, "string"), ("metadata", 2, "PodSandboxMetadata"), ("state", 3, "PodSandboxState"),
                   ("created_at", 4, "int64"), ("labels", 5, "map")],
    "ListPodSandboxResponse": [("items", 1, "[]PodSandbox")],
    "ImageSpec": [("image", 1, "string")],
    "Image": [("id", 1, "string"), ("repo_tags", 2, "[]string"), ("repo_digests", 3, "[]string"), ("size", 4, "uint64")],
    "ImageStatusRequest": [("image", 1, "ImageSpec"), ("verbose", 2, "bool")],
    "ImageStatusResponse": [("image", 1, "Image"), ("info", 2, "map")],
}

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "string": _F.TYPE_STRING, "bool": _F.TYPE_BOOL, "int32": _F.TYPE_INT32,
    "uint32": _F.TYPE_UINT32, "int64": _F.TYPE_INT64, "uint64": _F.TYPE_UINT64,
}


def _add_field(msg: descriptor_pb2.DescriptorProto, name: str, number: int, kind: str) -> None:
    field = msg.field.add(name=name, number=number, json_name=name)
    field.label = _F.LABEL_OPTIONAL
    if kind.startswith("[]"):
        field.label = _F.LABEL_REPEATED
        kind = kind[2:]
    if kind == "map":
        # proto3 map<string,string>: a repeated nested XxxEntry message marked map_entry
        entry = msg.nested_type.add(name="".join(p.capitalize() for p in name.split("_")) + "Entry")
        entry.options.map_entry = True
        _add_field(entry, "key", 1, "string")
        _add_field(entry, "value", 2, "string")
        field.label = _F.LABEL_REPEATED
        field.type = _F.TYPE_MESSAGE
        field.type_name = ".%s.%s.%s" % (PACKAGE, msg.name, entry.name)
    elif kind in _SCALARS:
        field.type = _SCALARS[kind]
    elif kind in ENUMS:
        field.type = _F.TYPE_ENUM
        field.type_name = ".%s.%s" % (PACKAGE, kind)
    else:
        field.type = _F.TYPE_MESSAGE
        field.type_name = ".%s.%s" % (PACKAGE, kind)


def _build() -> Dict[str, Any]:
    proto = descriptor_pb2.FileDescriptorProto(name="nodenet_cri_runtime_v1.proto", package=PACKAGE, syntax="proto3")
    for name, values in ENUMS.items():
        enum = proto.enum_type.add(name=name)
        for value_name, number in values:
            enum.value.add(name=value_name, number=number)
    for name, fields in MESSAGES.items():
        msg = proto.message_type.add(name=name)
        for field in fields:
            _add_field(msg, *field)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName("%s.%s" % (PACKAGE, name))) for name in MESSAGES}


M = _build()
SANDBOX_READY, SANDBOX_NOTREADY = 0, 1
PROTOCOLS = {"tcp": 0, "udp": 1, "sctp": 2}


class CRIError(Exception):
    """A CRI call failed: the gRPC status code and the runtime's message."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__("%s: %s: %s" % (method, code.name, details))
        self.method, self.code, self.details = method, code, details


class CRIClient:
    """RuntimeService and ImageService over a unix socket, as the kubelet calls them."""

    def __init__(self, socket_path: str, timeout: float = 60.0) -> None:
        self.channel = grpc.insecure_channel("unix://" + socket_path)
        self.timeout = timeout

    def close(self) -> None:
        self.channel.close()

    def call(self, service: str, method: str, request: Any, response: str, timeout: Optional[float] = None) -> Any:
        full = "/%s.%s/%s" % (PACKAGE, service, method)
        rpc = self.channel.unary_unary(full, request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=M[response].FromString)
        try:
            return rpc(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise CRIError(method, exc.code(), exc.details()) from None

    def _runtime(self, method: str, timeout: Optional[float] = None, **fields: Any) -> Any:
        return self.call("RuntimeService", method, M[method + "Request"](**fields), method + "Response", timeout)

    # RuntimeService
    def version(self, timeout: float = 5.0) -> Any:
        return self._runtime("Version", timeout=timeout, version="v1")

    def status(self) -> Any:
        return self._runtime("Status", verbose=True)

    def run_pod_sandbox(self, name: str, uid: str, namespace: str = "default", port_mappings: Iterable[Dict[str, Any]] = (),
                        cgroup_parent: str = "", labels: Optional[Dict[str, str]] = None) -> str:
        """RunPodSandbox as the kubelet sends it for a pod on the pod network; returns the 64-hex sandbox id."""
        mappings = [M["PortMapping"](protocol=PROTOCOLS[m.get("protocol", "tcp")], container_port=m["container_port"],
                                     host_port=m.get("host_port", 0), host_ip=m.get("host_ip", "")) for m in port_mappings]
        config = M["PodSandboxConfig"](
            metadata=M["PodSandboxMetadata"](name=name, uid=uid, namespace=namespace, attempt=0),
            hostname=name,
            port_mappings=mappings,
            labels=labels or {},
            linux=M["LinuxPodSandboxConfig"](
                cgroup_parent=cgroup_parent,
                security_context=M["LinuxSandboxSecurityContext"](namespace_options=M["NamespaceOption"](network=0, pid=1, ipc=0)),
            ),
        )
        return self._runtime("RunPodSandbox", config=config).pod_sandbox_id

    def pod_sandbox_status(self, sandbox_id: str, verbose: bool = True) -> Any:
        return self._runtime("PodSandboxStatus", pod_sandbox_id=sandbox_id, verbose=verbose)

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self._runtime("StopPodSandbox", pod_sandbox_id=sandbox_id)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self._runtime("RemovePodSandbox", pod_sandbox_id=sandbox_id)

    def list_pod_sandbox(self) -> List[Any]:
        return list(self._runtime("ListPodSandbox", filter=M["PodSandboxFilter"]()).items)

    # ImageService
    def image_status(self, image: str) -> Any:
        """The image as CRI knows it, or None (the response's image is unset when CRI does not know it)."""
        resp = self.call("ImageService", "ImageStatus", M["ImageStatusRequest"](image=M["ImageSpec"](image=image)), "ImageStatusResponse")
        return resp.image if resp.HasField("image") else None

    def wait_image(self, image: str, timeout: float = 30.0) -> Any:
        """An image imported with ctr reaches CRI asynchronously (through containerd's event stream): poll."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.image_status(image)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError("CRI does not know image %s after %.0fs" % (image, timeout))
            time.sleep(0.2)
