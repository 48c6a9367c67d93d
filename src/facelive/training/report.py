"""One shape for every ``facelive train MODEL``: a report, its JSON file and the model card.

Each ``train_*`` function returns a report (a JSON-able dict of what it fitted and measured).
This module is the only place that writes it (:func:`write_report`), renders a model card from it
(:func:`render_card`: the model's own card template, a function ``(report, command) -> str``,
filled in with the report and the command line that produced it) and prints the command's summary
(:func:`finish`, which every ``facelive train`` subcommand ends with). Imports nothing heavy.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from facelive.encoding import json_default

CardTemplate = Callable[[dict[str, Any], str], str]
"""A model's card template: ``template(report, command) -> Markdown``."""


def command_line(argv: Sequence[str] | None = None) -> str:
    """The ``facelive ...`` command line that is running (``argv`` default: ``sys.argv[1:]``),
    shell-quoted, for the card's "Reproduce" section."""
    args = sys.argv[1:] if argv is None else argv
    return "facelive " + " ".join(shlex.quote(str(a)) for a in args)


def to_json(report: Mapping[str, Any]) -> str:
    """The report as indented JSON (numpy values and paths converted)."""
    return json.dumps(report, indent=1, default=json_default)


def jsonable(report: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-JSON copy of ``report`` (what :func:`write_report` writes)."""
    return json.loads(to_json(report))


def write_report(report: Mapping[str, Any], path: Path) -> Path:
    """Write ``report`` as JSON to ``path`` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(report) + "\n")
    return path


def render_card(template: CardTemplate, report: Mapping[str, Any],
                command: str | None = None) -> str:
    """The model card: ``template(report, command)``; ``command`` (default :func:`command_line`)
    is appended under "Reproduce" when the template does not quote it itself."""
    command = command_line() if command is None else command
    text = template(dict(report), command)
    if command not in text:
        text = text.rstrip("\n") + f"\n\n**Reproduce:**\n\n    {command}\n"
    return text if text.endswith("\n") else text + "\n"


def write_card(template: CardTemplate, report: Mapping[str, Any], path: Path,
               command: str | None = None) -> Path:
    """Render the card (:func:`render_card`) and write it to ``path`` (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_card(template, report, command))
    return path


def finish(report: Mapping[str, Any], *, report_path: Path | None,
           template: CardTemplate | None = None, card_path: Path | None = None,
           summary: Mapping[str, Any] | None = None, command: str | None = None,
           echo: Callable[[str], None] = print) -> int:
    """End of every ``facelive train`` command: write the report (when ``report_path``) and the
    card (when ``card_path`` and ``template``), print ``summary`` as JSON and where the files
    went. Returns the exit status (0)."""
    if summary is not None:
        echo(to_json(summary))
    if report_path is not None:
        echo(f"report: {write_report(report, report_path)}")
    if card_path is not None:
        if template is None:
            raise ValueError("a card needs the model's card template")
        echo(f"card: {write_card(template, report, card_path, command)}")
    return 0


def metric_summary(metrics: Mapping[str, Any],
                   keys: Sequence[str] = ("APCER_max", "BPCER", "ACER", "EER")) -> dict[str, Any]:
    """The usual printed subset of an :func:`facelive.evaluation.evaluate_scores` level."""
    return {k: metrics[k] for k in keys if k in metrics}
