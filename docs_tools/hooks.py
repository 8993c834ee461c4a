"""MkDocs hooks: pages generated from the code at build time, so that they cannot drift.

- ``reference/config.md``: every key of a training config, from the typed config
  (``superres.training.config.TrainConfig`` and the data layer's dataclasses it embeds): the
  key's path, type and default come from the classes themselves, its description from the
  comment written beside the field in the source.
- ``reference/rest-api.md``: the web app's endpoints and its whole OpenAPI schema, from
  ``superres.serve.create_app(...).openapi()``.

Both are added to the file list in ``on_files``, before MkDocs builds the navigation.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File

CONFIG_PAGE = "reference/config.md"
REST_PAGE = "reference/rest-api.md"


# Pages other engineers are writing now: listed in mkdocs.yml's nav, left out of it until
# they exist, so that the strict build neither fails before they land nor forgets them after.
PAGES_ON_THE_WAY = {"RAY.md", "SCIENTIFIC.md", "INFERENCE_SPEED.md"}
ROOT = Path(__file__).resolve().parent.parent


def on_config(config):
    docs = Path(config["docs_dir"])
    config["nav"] = _without_missing(config["nav"], docs)
    return config


def _without_missing(nav: list, docs: Path) -> list:
    kept = []
    for entry in nav:
        (title, target), = entry.items() if isinstance(entry, dict) else ((None, entry),)
        if isinstance(target, list):
            kept.append({title: _without_missing(target, docs)})
        elif target in PAGES_ON_THE_WAY and not (docs / target).is_file():
            continue
        else:
            kept.append(entry)
    return kept


def on_files(files, config):
    files.append(File.generated(config, CONFIG_PAGE, content=config_reference()))
    files.append(File.generated(config, REST_PAGE, content=rest_api_reference()))
    # The changelog lives at the repository's root, where packagers look for it.
    files.append(File.generated(config, "CHANGELOG.md", abs_src_path=str(ROOT / "CHANGELOG.md")))
    return files


# --- the config reference -------------------------------------------------------------------


def field_comments(cls: type) -> dict[str, str]:
    """The comments beside each field of a class body: the comment lines right above the field
    and the one at the end of its line, joined, keyed by field name."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[str, str] = {}
    pending: list[str] = []
    line_of_field: dict[int, str] = {}
    depth = 0
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif tok.type == tokenize.COMMENT and depth <= 1 and tok.start[0] > 1:
            # (Comments before a body's first statement come before its INDENT token.)
            text = tok.string.lstrip("#").strip()
            # A comment alone on its line introduces the next field; one after code ends it.
            if tok.line.strip().startswith("#"):
                pending.append(text)
            elif tok.start[0] in line_of_field:
                name = line_of_field[tok.start[0]]
                comments[name] = " ".join(filter(None, [comments.get(name, ""), text]))
        elif (
            tok.type == tokenize.NAME
            and depth == 1
            and tok.start[1] == len(tok.line) - len(tok.line.lstrip())
            and i + 1 < len(tokens)
            and tokens[i + 1].string == ":"
        ):
            line_of_field[tok.start[0]] = tok.string
            if pending:
                comments[tok.string] = " ".join(pending)
            pending = []
        elif tok.type == tokenize.NAME and tok.string in ("def", "class") and depth == 1:
            pending = []
    return comments


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]" if args else name
    if annotation is type(None):
        return "None"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _section_class(annotation: Any) -> type | None:
    """The class of a nested section (a pydantic model or a dataclass), also inside ``X | None``."""
    from pydantic import BaseModel

    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and (issubclass(candidate, BaseModel) or dataclasses.is_dataclass(candidate)):
            return candidate
    return None


def _fields(cls: type) -> list[tuple[str, Any, bool, Any]]:
    """(name, annotation, required, default) of each field of a pydantic model or dataclass."""
    from pydantic import BaseModel

    rows = []
    if issubclass(cls, BaseModel):
        for name, info in cls.model_fields.items():
            required = info.is_required()
            default = None if required else info.get_default(call_default_factory=True)
            rows.append((name, info.annotation, required, default))
    else:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                default, required = f.default, False
            elif f.default_factory is not dataclasses.MISSING:
                default, required = f.default_factory(), False
            else:
                default, required = None, True
            rows.append((f.name, hints[f.name], required, default))
    return rows


def _default_text(default: Any) -> str:
    from pydantic import BaseModel

    if isinstance(default, BaseModel) or dataclasses.is_dataclass(default):
        return "(section)"
    if isinstance(default, tuple):
        default = list(default)
    return f"`{json.dumps(default)}`"


def _rows(cls: type, prefix: str, seen: set[type]) -> list[str]:
    comments = field_comments(cls)
    doc = inspect.getdoc(cls) or ""
    # A dataclass without a docstring of its own gets a generated signature as __doc__.
    if doc.startswith(cls.__name__ + "("):
        doc = ""
    lines = [f"### `{prefix.rstrip('.') or '(top level)'}`", ""]
    if doc and not cls.__module__.startswith("superres.training.config"):
        lines += [" ".join(doc.split()), ""]
    lines += ["| key | type | default | what it does |", "|---|---|---|---|"]
    nested = []
    for name, annotation, required, default in _fields(cls):
        section = _section_class(annotation)
        key = f"{prefix}{name}"
        what = comments.get(name, "")
        if section is not None and section not in seen:
            nested.append((section, f"{key}."))
            what = f"{what} See [`{key}`](#{_anchor(key)}).".strip()
        default_text = "required" if required else _default_text(default)
        lines.append(f"| `{key}` | `{_cell(_type_name(annotation))}` | {default_text} | {_cell(what)} |")
    lines.append("")
    for section, sub_prefix in nested:
        lines += _rows(section, sub_prefix, seen | {section})
    return lines


def _anchor(key: str) -> str:
    # Python-Markdown's toc slugs: lower case, punctuation dropped, spaces to hyphens.
    return "".join(c for c in key.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def _cell(text: str) -> str:
    """Text for one table cell: a "|" (unions, Literal choices) would end the cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def config_reference() -> str:
    """The config reference page: every key of ``TrainConfig``, section by section."""
    from superres.training.config import TrainConfig

    rows = _rows(TrainConfig, "", {TrainConfig})
    header = [
        "# Config reference",
        "",
        "Every key of a training config (`superres train CONFIG.yaml`), generated when this site is",
        "built from the typed config in `superres.training.config` and the data layer's classes it",
        "embeds, so it cannot fall behind the code. Unknown keys and wrong types are errors that",
        "name the key. Any key can be set on the command line too, checked the same way:",
        "`superres train configs/swiftrep_x2.yaml --set data.batch_size=32`.",
        "",
        "The recipes in `configs/` are complete examples; [Training](../TRAINING.md) explains them.",
        "",
    ]
    return "\n".join(header + rows) + "\n"


# --- the REST API reference ------------------------------------------------------------------


def rest_api_reference() -> str:
    """The REST API page: one table of the endpoints, then the OpenAPI schema itself."""
    from superres.serve import Settings, create_app

    app = create_app(Settings(workers=1, queue_size=1))
    schema = app.openapi()
    lines = [
        "# REST API reference",
        "",
        f"The web app's API (`superres serve`; OpenAPI {schema.get('openapi', '')}, app version",
        f"{schema['info']['version']}), generated when this site is built from `superres.serve`.",
        "A running server also serves this schema at `/openapi.json` and a browsable page at `/docs`.",
        "How to run it safely: [The web app](../WEB_APP.md).",
        "",
        "| method | path | what it does |",
        "|---|---|---|",
    ]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            lines.append(f"| `{method.upper()}` | `{path}` | {_cell(operation.get('summary') or '')} |")
    lines.append("")
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            lines += [f"## `{method.upper()} {path}`", ""]
            if operation.get("description"):
                lines += [operation["description"].strip(), ""]
            params = operation.get("parameters", [])
            if params:
                lines += ["| parameter | in | required | description |", "|---|---|---|---|"]
                for p in params:
                    lines.append(f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | {_cell(p.get('description') or '')} |")
                lines.append("")
            body = operation.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                ref = content.get("schema", {}).get("$ref", "")
                lines += [f"Request body: `{media}`" + (f", schema `{ref.rsplit('/', 1)[-1]}`" if ref else "") + ".", ""]
                lines += _body_fields(schema, ref)
            responses = operation.get("responses", {})
            if responses:
                lines += ["| status | meaning |", "|---|---|"]
                for status, response in responses.items():
                    lines.append(f"| {status} | {_cell(response.get('description') or '')} |")
                lines.append("")
    lines += [
        "## The OpenAPI schema",
        "",
        '??? note "openapi.json (click to open)"',
        "",
        "    ```json",
        textwrap.indent(json.dumps(schema, indent=2), "    "),
        "    ```",
        "",
    ]
    return "\n".join(lines)


def _schema_type(prop: dict) -> str:
    if "anyOf" in prop:
        return " | ".join(_schema_type(p) for p in prop["anyOf"])
    if prop.get("format") == "binary":
        return "file"
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    return prop.get("type", "object")


def _body_fields(schema: dict, ref: str) -> list[str]:
    """A table of a request body's fields (the form fields of an upload)."""
    if not ref.startswith("#/components/schemas/"):
        return []
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    required = set(body.get("required", []))
    lines = ["| field | type | required | default | description |", "|---|---|---|---|---|"]
    for name, prop in body.get("properties", {}).items():
        default = f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
        lines.append(
            f"| `{name}` | `{_cell(_schema_type(prop))}` | {'yes' if name in required else 'no'} | {default} | {_cell(prop.get('description') or '')} |"
        )
    return lines + [""]
