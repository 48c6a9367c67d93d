"""MkDocs hook: links from a page to a file of the repository outside ``docs/``.

Some pages (the generated model cards) link to source files, e.g.
``[facelive.liveness.probe](../../src/facelive/liveness/probe.py)``: right on GitHub, but no page
of the site. Such a link is replaced by its text when the file exists in the repository; a link
to a file that does not exist is left alone, so the strict build still fails on it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

_LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page, config, files) -> str:
    docs_dir = Path(config["docs_dir"]).resolve()
    repo = docs_dir.parent
    page_dir = posixpath.dirname(page.file.src_uri)

    def unlink(match: re.Match[str]) -> str:
        text, target = match.group(1), match.group(2)
        if "://" in target or target.startswith(("/", "mailto:")):
            return match.group(0)
        resolved = (docs_dir / page_dir / target).resolve()
        if resolved.is_relative_to(docs_dir) or not resolved.is_relative_to(repo):
            return match.group(0)
        return text if resolved.exists() else match.group(0)

    return _LINK.sub(unlink, markdown)
