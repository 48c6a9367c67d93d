"""The documentation holds: the README's commands are real, the docs site builds, examples run.

- The README's two quick-start commands: the second is the command ``.ci/run`` runs, verbatim;
  the first installs from the same constraints and checks the example image shipped in the
  repository. Every ``python`` command in the README's code blocks is one that ``.ci/run`` runs.
- Every ``facelive`` command in the README's code blocks parses with the real argument parser,
  every ``facelive <subcommand>`` the README names (code blocks and inline code) answers
  ``--help`` with exit status 0, and the ``facelive check`` commands on files of the repository
  run (exit 0). Every URL path of the README's examples is a route of the service.
- The README stays a front door (at most 200 lines), its results are delimited for replacement,
  and its relative links point at files and headings that exist.
- ``mkdocs build --strict`` succeeds (a broken link, a missing heading or page, or a docstring
  the API reference cannot parse fails it); skipped with the reason when MkDocs is not installed
  (the ``docs`` and ``test`` extras install it).
- The ``>>>`` examples in the public modules' docstrings run as doctests, as
  ``python -m pytest --doctest-modules src/facelive/pipeline.py ...`` would run them.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from facelive.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
CI_RUN = REPO / ".ci" / "run"
MAX_README_LINES = 200

PUBLIC_MODULES = [
    "facelive.pipeline",
    "facelive.imageio",  # facelive.load_image
    "facelive.evaluation.metrics",
    "facelive.iqa",
    "facelive.challenge",
    "facelive.audit",
]
"""The public API whose docstrings are published in the API reference (``docs/api/``)."""

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
_SHELL = {"bash", "sh", "shell", "console", ""}
_SEPARATORS = {"&&", "||", ";", "|", "&"}
_GLOBAL_OPTIONS_WITH_VALUE = {"--models"}


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _code_blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def _shell_lines(block: str) -> list[str]:
    """Command lines of a shell block: continuations joined, comment lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = (ln.strip() for ln in joined.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _commands(line: str) -> list[list[str]]:
    """The simple commands of one line (split at ``&&``, ``|``, ``;``), comments removed."""
    out: list[list[str]] = [[]]
    for tok in shlex.split(line, comments=True):
        if tok in _SEPARATORS:
            out.append([])
        else:
            out[-1].append(tok)
    return [c for c in out if c]


def _readme_commands() -> list[list[str]]:
    cmds = []
    for lang, body in _code_blocks(_readme()):
        if lang in _SHELL:
            for line in _shell_lines(body):
                cmds.extend(_commands(line))
    return cmds


def _subcommand(argv: list[str]) -> str | None:
    """The subcommand of ``facelive`` arguments (after global options), or None."""
    i = 0
    while i < len(argv):
        if argv[i] in _GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return argv[i]
    return None


def _ci_command() -> str:
    lines = [ln.strip() for ln in CI_RUN.read_text().splitlines()]
    marker = max(i for i, ln in enumerate(lines) if "README's test command" in ln)
    return next(ln for ln in lines[marker + 1:] if ln and not ln.startswith("#"))


def _quick_start() -> tuple[str, str]:
    """The two command lines under the README's ``# 1.`` and ``# 2.`` comments."""
    for lang, body in _code_blocks(_readme()):
        lines = [ln.strip() for ln in body.splitlines()]
        starts = [i for i, ln in enumerate(lines) if re.match(r"#\s*[12]\.", ln)]
        if lang in _SHELL and len(starts) == 2:
            return lines[starts[0] + 1], lines[starts[1] + 1]
    raise AssertionError("README: no code block with the '# 1.' and '# 2.' quick-start commands")


# -- the README's commands -------------------------------------------------------------------

def test_quick_start_is_what_ci_runs() -> None:
    check, tests = _quick_start()
    ci = _ci_command()
    assert tests == ci, f"README quick-start command 2 differs from .ci/run:\n{tests}\n{ci}"
    # command 1: the same fresh environment and the same constraints file, then the example
    venv = ci.split(" && pip ")[0]
    assert check.startswith(venv + " && pip install "), check
    assert ("-c constraints.txt" in check) == ("-c constraints.txt" in ci), check
    assert check.endswith("&& facelive check examples/astronaut.jpg"), check
    assert (REPO / "examples" / "astronaut.jpg").is_file()
    if "-c constraints.txt" in ci:
        assert (REPO / "constraints.txt").is_file()


def test_python_commands_are_run_by_ci() -> None:
    """Every ``python ...`` command of the README is one that ``.ci/run`` runs."""
    ci_parts = [" ".join(c) for c in _commands(_ci_command())]
    quick = {" ".join(c) for line in _quick_start() for c in _commands(line)}
    for cmd in _readme_commands():
        if cmd[0].startswith("python"):
            text = " ".join(cmd)
            assert text in ci_parts or text in quick, f"README runs {text!r}, .ci/run does not"


def test_facelive_commands_parse() -> None:
    cmds = [c for c in _readme_commands() if c[0] == "facelive"]
    assert len(cmds) >= 4, "the README's tour lost its facelive commands"
    for cmd in cmds:
        try:
            build_parser().parse_args(cmd[1:])
        except SystemExit as exc:  # argparse's usage error
            pytest.fail(f"README command does not parse (exit {exc.code}): {' '.join(cmd)}")


def _named_subcommands() -> set[str]:
    subs = {_subcommand(c[1:]) for c in _readme_commands() if c[0] == "facelive"}
    for span in re.findall(r"`(facelive [^`]+)`", _readme()):
        subs.add(_subcommand(shlex.split(span.replace("...", ""))[1:]))
    subs.discard(None)
    return subs  # type: ignore[return-value]


def _facelive_exe() -> list[str]:
    script = Path(sys.executable).with_name("facelive")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "facelive"]


def test_named_subcommands_exist() -> None:
    subs = _named_subcommands()
    assert {"check", "serve", "evaluate", "calibrate"} <= subs, subs
    for sub in sorted(subs):
        proc = subprocess.run([*_facelive_exe(), sub, "--help"], cwd=REPO, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, f"facelive {sub} --help: {proc.returncode}\n{proc.stderr}"


def test_check_commands_on_repository_files_run(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's ``facelive check`` commands whose inputs ship with the repository."""
    monkeypatch.chdir(REPO)
    ran = 0
    for cmd in _readme_commands():
        if cmd[0] != "facelive" or _subcommand(cmd[1:]) != "check":
            continue
        paths = [a for a in cmd[2:] if not a.startswith("-") and "/" in a]
        if not paths or not all((REPO / p).exists() for p in paths):
            continue  # the reader's own files (`my-frames/...`)
        assert main(cmd[1:]) == 0, " ".join(cmd)
        ran += 1
        out = capsys.readouterr().out
        assert "astronaut.jpg" in out
    assert ran >= 1


def test_urls_are_service_routes() -> None:
    from facelive.server.routes import demo, liveness, ops, sessions, web

    routes = {r.path for mod in (demo, liveness, ops, sessions, web) for r in mod.router.routes}
    paths = set()
    for _lang, body in _code_blocks(_readme()):
        paths.update(re.findall(r"https?://(?:127\.0\.0\.1|localhost)(?::\d+)?(/[\w./-]*)", body))
    assert "/v1/liveness" in paths
    for path in paths:
        assert path in routes, f"README calls {path}, which the service does not serve"


# -- the README's shape and links ------------------------------------------------------------

def test_readme_is_a_front_door() -> None:
    text = _readme()
    n = len(text.splitlines())
    assert n <= MAX_README_LINES, f"README.md has {n} lines (at most {MAX_README_LINES})"
    starts = [m.start() for m in re.finditer(r"<!-- results:start -->", text)]
    ends = [m.start() for m in re.finditer(r"<!-- results:end -->", text)]
    assert starts and len(starts) == len(ends)
    assert all(s < e for s, e in zip(starts, ends, strict=True))
    assert all(e < s for e, s in zip(ends, starts[1:], strict=False))
    assert not re.search(r"^#+ .*\b(issue|session) \d", text, re.M | re.I), "history heading"


def _github_slug(heading: str) -> str:
    text = re.sub(r"[`*]|<[^>]+>", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {_github_slug(h) for h in re.findall(r"^#{1,6} (.+?)\s*#*$", text, re.M)}


@pytest.mark.parametrize("doc", ["README.md", "CHANGELOG.md"])
def test_relative_links_resolve(doc: str) -> None:
    path = REPO / doc
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{doc}: link to a missing {target}"
        if anchor and dest.suffix == ".md":
            assert anchor in _anchors(dest), f"{doc}: no heading for #{anchor} in {file or doc}"


# -- the docs site ---------------------------------------------------------------------------

@pytest.mark.slow
def test_docs_site_builds_in_strict_mode(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="MkDocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings_handlers.python",
                        reason="mkdocstrings[python] is not installed (pip install -e '.[docs]')")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(REPO / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    for page in ("index.html", "results/index.html", "integration-web/index.html",
                 "api/pipeline/index.html", "api/iqa/index.html", "api/audit/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    api = (tmp_path / "site" / "api" / "pipeline" / "index.html").read_text(encoding="utf-8")
    assert "Parameters" in api and "check_frame" in api


# -- doctests --------------------------------------------------------------------------------

def _with_submodules(name: str) -> list[object]:
    module = importlib.import_module(name)
    mods = [module]
    if hasattr(module, "__path__"):
        for info in pkgutil.iter_modules(module.__path__, prefix=name + "."):
            mods.append(importlib.import_module(info.name))
    return mods


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_docstring_examples_run(name: str, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    attempted = 0
    for module in _with_submodules(name):
        for test in finder.find(module, module.__name__):
            result = runner.run(test, out=lambda s: sys.stdout.write(s))
            assert result.failed == 0, f"doctest {test.name} failed (output above)"
            attempted += result.attempted
    assert attempted > 0, f"{name}: no >>> example in its docstrings"
