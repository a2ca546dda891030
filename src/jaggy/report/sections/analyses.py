"""`jaggy bias` and `jaggy train` outputs (bias.json, train.json), shown as tables of what the
file holds. A dedicated section with figures can replace either one: register it under the
same name in its own module."""

from __future__ import annotations

from .._html import esc, key_values, note, number, table, value_ci
from .._registry import has_file, register_section
from .._run import read_json

MAX_ROWS = 200
MAX_DEPTH = 3


def _cell(value) -> str:
    if isinstance(value, dict) and "value" in value:
        return value_ci(value)
    if isinstance(value, bool) or value is None:
        return esc(value)
    if isinstance(value, (int, float)):
        return number(value, 4) if isinstance(value, float) else esc(value)
    if isinstance(value, (list, dict)):
        text = str(value)
        return esc(text if len(text) <= 80 else text[:77] + "…")
    return esc(value)


def render_json(data, depth: int = 0) -> str:
    """Scalars as a key/value table, lists of objects as tables, nested objects recursively."""
    if isinstance(data, list):
        objects = [x for x in data if isinstance(x, dict)]
        if objects and len(objects) == len(data):
            columns: list[str] = []
            for x in objects:
                columns += [k for k in x if k not in columns]
            rows = [[_cell(x.get(c)) for c in columns] for x in objects[:MAX_ROWS]]
            more = (
                note(f"First {MAX_ROWS} of {len(objects)} rows.") if len(objects) > MAX_ROWS else ""
            )
            return table(columns, rows) + more
        return f"<p>{_cell(data)}</p>"
    if not isinstance(data, dict):
        return f"<p>{_cell(data)}</p>"
    scalars = [
        (k, v)
        for k, v in data.items()
        if not isinstance(v, (dict, list)) or (isinstance(v, dict) and "value" in v)
    ]
    parts = []
    if scalars:
        rows = "".join(
            f'<tr><th scope="row">{esc(k)}</th><td>{_cell(v)}</td></tr>' for k, v in scalars
        )
        parts.append(f'<table class="kv"><tbody>{rows}</tbody></table>')
    for key, value in data.items():
        if isinstance(value, (dict, list)) and not (isinstance(value, dict) and "value" in value):
            if depth >= MAX_DEPTH:
                parts.append(key_values([(key, str(value)[:200])]))
                continue
            parts.append(f"<h4>{esc(key)}</h4>" + render_json(value, depth + 1))
    return "".join(parts)


def _generic(file_name: str, command: str):
    def render(runs, report) -> str | None:
        parts = [note(f"What `{command}` wrote to {file_name}.")]
        for run in runs:
            data = read_json(run.path / file_name)
            if data is None:
                continue
            parts.append(f'<h3>{esc(run.label)} <span class="run-tag">{esc(run.path)}</span></h3>')
            parts.append(render_json(data))
        return "".join(parts) if len(parts) > 1 else None

    return render


register_section("bias", "Photographer's bias", order=75, present=has_file("bias.json"))(
    _generic("bias.json", "jaggy bias")
)
register_section("train", "Learning invariance", order=80, present=has_file("train.json"))(
    _generic("train.json", "jaggy train")
)
