"""The OpenAPI 3.1 document of the HTTP API, typed from the code: response schemas from the
records the handlers answer (attrs classes, as ``_wire`` writes them), request bodies from
the parameters of the methods they call, query parameters with their types."""

from __future__ import annotations

import collections.abc as abc
import datetime as dt
import enum
import types
import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from satchel._version import __version__

if TYPE_CHECKING:
    from satchel._http import Endpoint

JSON = "application/json"
#: The type of each query parameter the endpoints take (any other is a string).
QUERY_TYPES: dict[str, Any] = {
    "limit": int,
    "offset": int,
    "version": int,
    "descending": bool,
    "cascade": bool,
    "new_id": bool,
    "last": int,
    "tags": list[str],
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["kind", "message"],
            "properties": {"kind": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


def _names() -> dict[str, Any]:
    """Names the records' annotations use under ``TYPE_CHECKING`` only."""
    import satchel.actors.hooks._schedules as schedules
    import satchel.runtime as runtime
    import satchel.storage as storage
    from satchel.actors import _check, _model
    from satchel.actors.hooks import _hooks

    found: dict[str, Any] = {}
    for module in (runtime, storage, schedules, _check, _hooks, _model):
        found.update(vars(module))
    return found


def hints(obj: Any) -> dict[str, Any]:
    """The resolved annotations of a class or function."""
    try:
        return typing.get_type_hints(obj)
    except NameError:
        return typing.get_type_hints(obj, localns=_names())


def returns(method: Callable[..., Any]) -> Any:
    """The return type of ``method``."""
    return hints(method)["return"]


def fields_of(method: Callable[..., Any], names: Sequence[str]) -> dict[str, Any]:
    """The types of the parameters ``names`` of ``method`` (a body's fields)."""
    found = hints(method)
    return {name: found.get(name, Any) for name in names}


@attrs.frozen
class Shape:
    """An object a handler answers that is no record: its fields and their types."""

    fields: dict[str, Any]


def shape(**fields: Any) -> Shape:
    """The shape of an object with ``fields``."""
    return Shape(fields)


class Schemas:
    """JSON schemas of Python types; each attrs class once, under ``components``."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": _ERROR}

    def of(self, tp: Any) -> dict[str, Any]:
        """The schema of values of type ``tp`` on the wire."""
        if isinstance(tp, Shape):
            properties = {name: self.of(t) for name, t in tp.fields.items()}
            return {"type": "object", "required": sorted(properties), "properties": properties}
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is None or tp is type(None):
            return {"type": "null"}
        if origin in (typing.Union, types.UnionType):
            return {"anyOf": [self.of(arg) for arg in args]}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if attrs.has(tp):
            return self._record(tp)
        return self._plain(tp, origin, args)

    def _plain(self, tp: Any, origin: Any, args: tuple[Any, ...]) -> dict[str, Any]:
        simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
        if tp in simple:
            return {"type": simple[tp]}
        if tp is dt.datetime:
            return {"type": "string", "format": "date-time"}
        if tp is bytes:
            return {"type": "string"}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return {"type": "string", "enum": [member.value for member in tp]}
        if origin in (dict, abc.Mapping) or tp in (dict, abc.Mapping):
            value = self.of(args[1]) if len(args) == 2 else {}
            return {"type": "object", "additionalProperties": value}
        if origin in (list, tuple, set, frozenset, abc.Sequence, abc.Iterable, abc.Set):
            items = args[0] if args and args[0] is not Ellipsis else Any
            return {"type": "array", "items": self.of(items)}
        return {}  # Any, or a JSON-like value of any shape

    def _record(self, cls: type) -> dict[str, Any]:
        name = cls.__name__
        if name not in self.components:
            self.components[name] = {}  # reserved: a record may refer to itself
            found = hints(cls)
            properties = {f.name: self.of(found.get(f.name, Any)) for f in attrs.fields(cls)}
            if name == "ArtifactInfo":
                properties["artifact_type"] = {"type": "string"}  # see _wire.to_wire
            self.components[name] = {
                "type": "object",
                "required": sorted(properties),
                "properties": properties,
            }
        return {"$ref": f"#/components/schemas/{name}"}


def _parameters(ep: Endpoint, schemas: Schemas) -> list[dict[str, Any]]:
    in_path = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_names(ep.path)
    ]
    in_query = []
    for name in ep.query:
        tp = QUERY_TYPES.get(name, str)
        parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schemas.of(tp)}
        if typing.get_origin(tp) is list:
            parameter.update({"style": "form", "explode": True})
        in_query.append(parameter)
    return in_path + in_query


def _responses(ep: Endpoint, schemas: Schemas) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "success"}
    if ep.status not in (202, 204) or ep.returns is not None:
        if ep.produces == JSON:
            schema = schemas.of(ep.returns) if ep.returns is not None else {}
            success["content"] = {JSON: {"schema": schema}}
        else:
            success["content"] = {ep.produces: {"schema": {"type": "string"}}}
    error = {"$ref": "#/components/schemas/Error"}
    return {
        str(ep.status): success,
        "default": {"description": "an error, with its kind", "content": {JSON: {"schema": error}}},
    }


def _request_body(ep: Endpoint, schemas: Schemas) -> dict[str, Any] | None:
    if ep.body == "bytes":
        binary = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}
        return {"required": True, "content": {"application/octet-stream": binary}}
    if ep.body == "json":
        properties = {name: schemas.of(tp) for name, tp in ep.fields.items()}
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if ep.fields:
            schema["additionalProperties"] = False
        return {"required": False, "content": {JSON: {"schema": schema}}}
    return None


def openapi(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """An OpenAPI 3.1 document of ``endpoints``."""
    schemas = Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        operation: dict[str, Any] = {
            "summary": ep.summary,
            "tags": [ep.tag],
            "operationId": ep.handler.__name__,
            "parameters": _parameters(ep, schemas),
            "responses": _responses(ep, schemas),
        }
        if not ep.needs_token:
            operation["security"] = []
        body = _request_body(ep, schemas)
        if body is not None:
            operation["requestBody"] = body
        paths.setdefault(_openapi_path(ep.path), {})[ep.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "satchel", "version": __version__},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas.components,
        },
        "security": [{"bearer": []}],
    }


def _path_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def _openapi_path(path: str) -> str:
    return "/".join(
        "{" + part[1:-1].split(":")[0] + "}" if part.startswith("{") else part
        for part in path.split("/")
    )
