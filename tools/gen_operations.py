"""Generate ``aioedge/_operations.py``: the 34 typed methods, from the catalog.

    python tools/gen_operations.py           # rewrite the file (and the spec's checksums)
    python tools/gen_operations.py --check   # exit 1 if either committed file is stale

The checksums (``aioedge/_spec/SHA256SUMS``) pin the packaged spec the methods were
generated from: a test recomputes them, so an edit of the spec that was not followed by
a run of this tool fails the tests even where nothing else would notice.

Everything a method needs comes from ``aioedge._catalog`` (wire names, types, required,
defaults, enums, QPS, summary) and ``aioedge._models.RESULTS`` (the return model).  The
output is already in ``ruff format`` style, so the check needs no formatter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aioedge._catalog import OPERATIONS, Operation, Param, _spec_text  # noqa: E402
from aioedge._models import RESULTS, ResultSpec  # noqa: E402

TARGET = ROOT / "aioedge" / "_operations.py"
SPEC_DIR = ROOT / "aioedge" / "_spec"
CHECKSUMS = SPEC_DIR / "SHA256SUMS"
WIDTH = 100

# Struct-list parameters: what a typed method accepts for each entry.
_ENTRY_TYPES = {
    "Configs": "DriverConfigInput | DriverConfig | Mapping[str, str]",
    "DeviceConfigs": "DeviceConfigInput | DeviceConfig | Mapping[str, str]",
}

HEADER = '''\
"""The 34 typed methods: one per Action, keyword-only snake_case arguments, typed results.

Generated from the catalog by ``tools/gen_operations.py``; do not edit by hand (a test
checks that this file is up to date).  Each method maps its arguments to the wire names,
leaves out those given as None, awaits ``self.call(action, params)`` (validation, quotas,
signing and retries all happen there) and parses the body into its model (``_models``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from ._models import (
{imports}
)

__all__ = ["OperationsMixin"]


def _params(**wire: Any) -> dict[str, Any]:
    """The wire parameters that were given (None means "not given")."""
    return {{name: value for name, value in wire.items() if value is not None}}


# The models a struct-list entry may be given as (each has ``to_wire()``).
_ENTRY_MODELS = ({entry_models})


def _entries(items: Iterable[Any] | None) -> Any:
    """Struct-list entries: models and inputs through ``to_wire()``, anything else as it is.

    Mappings may use wire or snake_case keys (the catalog accepts both); anything that is
    not a list, and any entry that is neither a mapping nor one of the models, is passed on
    for validation to name the parameter (``Configs``, ``Configs.2``) and the rule.
    """
    if items is None or isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        return items
    return [item.to_wire() if isinstance(item, _ENTRY_MODELS) else item for item in items]


class OperationsMixin:
    """One typed method per operation, over ``call`` (provided by ``EdgeClient``)."""

    __slots__ = ()

    async def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call ``action`` with wire-named ``params``; return the parsed JSON body."""
        raise NotImplementedError
'''


def _raw_requests() -> dict[tuple[str, str], Mapping[str, Any]]:
    """(action, canonical name) → the JSON row, for enum meanings and constraint text."""
    data = json.loads(_spec_text("operations.json"))
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for op in data["operations"]:
        for row in op["request"]:
            out[(op["action"], row["name"].removesuffix(".N"))] = row
    return out


_RAW = _raw_requests()


def _literal(p: Param) -> str | None:
    if p.values is None or p.repeated:
        return None
    if p.type in ("Integer", "Long"):
        return "Literal[" + ", ".join(p.values) + "]"
    return "Literal[" + ", ".join(json.dumps(v) for v in p.values) + "]"


def annotation(p: Param) -> str:
    """The argument's type as the method spells it (without ``| None``)."""
    if p.is_struct_list:
        return f"Sequence[{_ENTRY_TYPES[p.name]}]"
    if p.millis:  # the catalog converts an aware datetime (and refuses a naive one)
        return "int | datetime"
    literal = _literal(p)
    if literal is not None:
        return literal
    return p.python_type


def ordered(op: Operation) -> list[Param]:
    """Required first, then those with a default, then optional; IotInstanceId last."""

    def rank(p: Param) -> int:
        if p.name == "IotInstanceId":
            return 3
        if p.required and p.default is None:
            return 0
        return 1 if p.required else 2

    return sorted(op.params, key=rank)


def signature_params(op: Operation) -> list[str]:
    """The keyword-only parameters, one per line, split as ruff format would."""
    out = []
    for p in ordered(op):
        ann = annotation(p)
        if p.required and p.default is None:
            line = f"{p.py_name}: {ann}"
        elif p.required:
            line = f"{p.py_name}: {ann} = {p.default!r}"
        else:
            line = f"{p.py_name}: {ann} | None = None"
        if len(line) + 9 > WIDTH and ann.startswith("Literal["):
            values = ann[len("Literal[") : -1].split(", ")
            rest = line[line.index(ann) + len(ann) :]
            line = "\n".join([f"{p.py_name}: Literal[", *(f"    {v}," for v in values), f"]{rest}"])
        out.append(line)
    return out


_NON_ENGLISH = re.compile(r"\s*[（(][^()（）]*[\u3000-\u9fff\uff00-\uffef][^()（）]*[)）]")


def _sentence(text: str) -> str:
    # The IoT Platform page is bilingual: keep the English, drop the (中文) glosses.
    text = " ".join(_NON_ENGLISH.sub("", text).split())
    return text if not text or text.endswith(".") else text + "."


def param_doc(op: Operation, p: Param) -> str:
    """One argument's documentation: description, meanings of values, constraints."""
    row = _RAW.get((op.action, p.name), {})
    parts = [_sentence(p.description or row.get("description", ""))]
    values = row.get("values")
    if isinstance(values, Mapping) and p.type != "Boolean":
        parts.append("; ".join(f"{k}: {v}" for k, v in values.items()) + ".")
    if p.is_struct_list:
        fields = ", ".join(f"{f.py_name}{'' if f.required else ' (optional)'}" for f in p.fields)
        parts.append(f"Each entry: {fields}.")
        for f in p.fields:
            if f.values:
                parts.append(f"{f.py_name}: one of {', '.join(f.values)}.")
    constraints = row.get("constraints")
    if constraints:
        parts.append(_sentence(str(constraints)[:1].upper() + str(constraints)[1:]))
    if p.max_items:
        parts.append(f"At most {p.max_items} per call.")
    if p.millis:
        parts.append("Milliseconds since the epoch, or an aware datetime.")
    return " ".join(x for x in parts if x)


def _wrap(text: str, first: str, rest: str) -> list[str]:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def facts(op: Operation) -> str:
    kind = "read-only" if op.read_only else "mutating"
    paged = f", paged (``{op.items_key}``)" if op.paged else ""
    where = f" ({op.section})" if op.section[:1].isdigit() else " (IoT Platform)"
    return f"``{op.action}``{where}: {op.qps} QPS per account, {kind}{paged}."


def returns_doc(spec: ResultSpec) -> str:
    if spec.kind == "page":
        return f"One page: ``{spec.model.__name__}`` items plus total, page_size, current_page."
    if spec.kind == "list":
        return f"``{spec.model.__name__}`` items."
    if spec.model.__name__ == "ActionResult":
        return "``ActionResult`` (the request ID)."
    return f"``{spec.model.__name__}``."


def return_expr(spec: ResultSpec) -> str:
    name = spec.model.__name__
    if spec.kind == "page":
        return f'parse_page({name}, "{spec.items_key}", body)'
    if spec.kind == "list":
        return f'parse_list({name}, "{spec.items_key}", body)'
    if spec.kind == "data":
        return f"parse_data({name}, body)"
    return f"{name}.from_dict(body)"


def wire_value(p: Param) -> str:
    if p.is_struct_list:
        return f"_entries({p.py_name})"
    return p.py_name


def render_method(op: Operation) -> list[str]:
    spec = RESULTS[op.action]
    lines = [
        f"    async def {op.method_name}(",
        "        self,",
        "        *,",
    ]
    for entry in signature_params(op):
        lines += [f"        {line}" for line in entry.split("\n")]
        lines[-1] += ","
    lines += [
        f"    ) -> {spec.annotation}:",
    ]
    doc = [*_wrap(_sentence(op.summary), '        """', "        "), ""]
    doc += [*_wrap(facts(op), "        ", "        "), "", "        Args:"]
    for p in ordered(op):
        doc += _wrap(param_doc(op, p), f"            {p.py_name}: ", "                ")
    doc += ["", "        Returns:", *_wrap(returns_doc(spec), "            ", "            ")]
    doc += ['        """']
    lines += doc
    lines += [
        "        body = await self.call(",
        f'            "{op.action}",',
        "            _params(",
        *(f"                {p.name}={wire_value(p)}," for p in ordered(op)),
        "            ),",
        "        )",
        f"        return {return_expr(spec)}",
    ]
    return lines


def _entry_models() -> str:
    names = sorted(
        {n.strip() for t in _ENTRY_TYPES.values() for n in t.split("|") if "Mapping" not in n}
    )
    return ", ".join(names)


def _imports(ops: Iterable[Operation]) -> str:
    names: set[str] = set()
    for op in ops:
        spec = RESULTS[op.action]
        names.add(spec.model.__name__)
        names.add({"page": "Page", "list": "ListResult", "data": "parse_data"}.get(spec.kind, ""))
        names.add({"page": "parse_page", "list": "parse_list"}.get(spec.kind, ""))
        for p in op.params:
            if p.is_struct_list:
                names.update(
                    n.strip() for n in _ENTRY_TYPES[p.name].split("|") if "Mapping" not in n
                )
    names.discard("")
    # isort order as ruff applies it: CamelCase classes before lowercase functions.
    ordered_names = sorted(names, key=lambda n: (n[0].islower(), n))
    return "\n".join(f"    {n}," for n in ordered_names)


def render() -> str:
    ops = list(OPERATIONS.values())
    out = [HEADER.format(imports=_imports(ops), entry_models=_entry_models()).rstrip("\n")]
    group = None
    for op in ops:
        if op.group != group:
            group = op.group
            title = op.group_title if op.section[:1].isdigit() else "IoT Platform"
            out += ["", f"    # --- {title}"]
        out += ["", *render_method(op)]
    return "\n".join(out) + "\n"


def render_checksums() -> str:
    """``sha256sum`` lines for every JSON file of the packaged spec, sorted by name."""
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}"
        for path in sorted(SPEC_DIR.glob("*.json"))
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args(argv)
    outputs = {TARGET: render(), CHECKSUMS: render_checksums()}
    if args.check:
        stale = [p for p, text in outputs.items() if p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run python tools/gen_operations.py")
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(OPERATIONS)} operations) and {CHECKSUMS.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
