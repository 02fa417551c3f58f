"""Turn a ``jsonschema`` validation error into a ``StageSchemaError`` in the user's terms."""

from __future__ import annotations

from typing import Any

from kraken.stage.errors import StageSchemaError
from kraken.stage.paths import format_path, join

_TYPE_NAMES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "object": "dict",
    "array": "list",
    "null": "None",
}


def describe(value: Any) -> str:
    """``string 'abc'``, ``integer 5``, ``list``, ``None`` ... for messages."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, (dict, list)):
        return "dict" if isinstance(value, dict) else "list"
    kind = {str: "string", int: "integer", float: "number"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


def _expected(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_NAMES.get(name, name) for name in names)


def _required_alternatives(subschemas: Any) -> list[str] | None:
    """``['cmd', 'script']`` for ``oneOf: [{required: [cmd]}, {required: [script]}]``, else None."""
    names: list[str] = []
    for sub in subschemas:
        if not isinstance(sub, dict) or set(sub) != {"required"}:
            return None
        names.extend(sub["required"])
    return names


def _message(validator: str, value: Any, schema: dict[str, Any], instance: Any, default: str) -> str:
    if validator == "type":
        return f"expected {_expected(value)}, got {describe(instance)}"
    if validator == "enum":
        return f"{instance!r} is not one of [{','.join(repr(item) for item in value)}]"
    if validator == "const":
        return f"must be {value!r}"
    if validator in ("minItems", "minLength"):
        if value == 1:
            return "must not be empty"
        return f"must have at least {value} {'items' if validator == 'minItems' else 'characters'}"
    if validator in ("maxItems", "maxLength"):
        return f"must have at most {value} {'items' if validator == 'maxItems' else 'characters'}"
    if validator == "minimum":
        return f"must be at least {value}, got {instance!r}"
    if validator == "exclusiveMinimum":
        return f"must be greater than {value}, got {instance!r}"
    if validator == "maximum":
        return f"must be at most {value}, got {instance!r}"
    if validator == "exclusiveMaximum":
        return f"must be less than {value}, got {instance!r}"
    if validator == "pattern":
        hint = schema.get("x-hint")
        return f"{instance!r} is not valid" + (f" ({hint})" if hint else f" (must match {value!r})")
    if validator == "not" and schema.get("x-not-hint"):
        return str(schema["x-not-hint"])
    if validator in ("oneOf", "anyOf"):
        names = _required_alternatives(value)
        if names:
            quoted = ", ".join(f"'{name}'" for name in names)
            return f"{'exactly' if validator == 'oneOf' else 'at least'} one of {quoted} is required"
    return default


def to_stage_error(error: Any, base: str = "") -> StageSchemaError:
    """``error`` is a ``jsonschema.ValidationError``; ``base`` is the path of the validated document."""
    path = format_path(error.absolute_path, base)
    validator, value, schema, instance = error.validator, error.validator_value, error.schema, error.instance
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = list(schema.get("properties", {}))
        extra = sorted(key for key in instance if key not in allowed)
        if extra:
            listed = ", ".join(allowed) if allowed else "none"
            return StageSchemaError(f"unknown key '{extra[0]}' (allowed: {listed})", path=join(path, extra[0]))
    if validator == "required" and isinstance(instance, dict):
        missing = [key for key in value if key not in instance]
        if missing:
            return StageSchemaError("this key is required", path=join(path, missing[0]))
    return StageSchemaError(_message(validator, value, schema, instance, error.message), path=path or None)
