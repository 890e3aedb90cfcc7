"""The web page's options: a form schema generated from `InpaintRequest`'s field table (one
form field per request field, with the page's own limits and defaults), plus the model and
the job a run comes from. The schema checks shapes and the page's limits; the request then
checks values, and its errors are worded the web's way: `options.num_samples`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from repaint.errors import FieldError, RepaintError
from repaint.request import InpaintRequest, field_default, request_fields

TYPES: dict[str, Any] = {
    "int": int | None,
    "float": float | None,
    "text": str | None,
    "choice": str | None,
    "eta": float | str | None,
    "switch": bool | None,
    "schedule": dict[str, Any] | None,
    "branch_schedule": dict[str, Any] | None,
    "options": dict[str, Any] | None,
    "extend": list[int] | int | None,
}


class _Blanks(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def blank(cls, values: Any) -> Any:
        """An empty text box means "not given"."""
        if isinstance(values, dict):
            return {
                k: None if isinstance(v, str) and not v.strip() else v for k, v in values.items()
            }
        return values


def _form() -> type[BaseModel]:
    fields: dict[str, Any] = {
        "model": (str | None, None),
        "parent": (str | None, Field(default=None, max_length=64)),  # the job branched from
    }
    for item in request_fields():
        limits = item.metadata.get("web_limits", {})
        fields[item.name] = (TYPES[item.metadata["kind"]], Field(default=None, **limits))
    return create_model("FormOptions", __base__=_Blanks, **fields)


FormOptions = _form()


def web_name(field: str) -> str:
    return f"options.{field}"


def one_line(error: ValidationError | RequestValidationError, where: str) -> str:
    """The first problem of a validation error, naming the field."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if part != "body") or where
    return f"{where}.{field}: {first['msg']}" if not field.startswith(where) else field


def parse_options(raw: str | dict[str, Any]) -> tuple[str | None, InpaintRequest, str | None, str]:
    """The page's options -> (model or None, request, parent job id, mask convention of the
    painted upload); anything odd is a one-line `RepaintError` naming `options.<field>`."""
    try:
        if isinstance(raw, dict):
            options = FormOptions.model_validate(raw)
        else:
            options = FormOptions.model_validate_json(raw or "{}")
    except ValidationError as error:
        raise RepaintError(one_line(error, "options")) from None
    given = {
        item.name: getattr(options, item.name)
        for item in request_fields()
        if getattr(options, item.name) is not None
    }
    defaults = {item.name: field_default(item, "web") for item in request_fields()}
    try:
        request = InpaintRequest(**{**defaults, **given})
    except FieldError as error:
        raise RepaintError(error.worded(web_name)) from None
    # the painted mask is read in its convention and handed on as a keep-mask
    return options.model, replace(request, mask_mode="keep"), options.parent, request.mask_mode
