"""The front door works: every link and repository path named in README.md, docs/ and the
code exists (headings included), every ``python`` block of README.md and docs/ runs as
written (each page's blocks in order, in a fresh process), and the command line's help
lists what it has, in plain text."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
PAGES = ["README.md"] + sorted(os.path.join("docs", name)
                               for name in os.listdir(os.path.join(ROOT, "docs"))
                               if name.endswith(".md"))
#: a path inside the repository, as the docs and the code write them
REPO_PATH = re.compile(r"(?<![\w./-])((?:docs|kernels|fastnn|scripts|tests|asv_benchmarks)/"
                       r"[\w./-]*\w\.(?:py|md|json|csv\.gz)|README\.md|LICENSE)(?![\w/])")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: pages whose examples need an environment of their own
ENVIRONMENT = {os.path.join("docs", "gpu.md"): {"NUMBA_ENABLE_CUDASIM": "1"}}


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def _slug(heading):
    """A heading's anchor, as GitHub makes it."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def _anchors(page):
    return {_slug(line.lstrip("#")) for line in _read(page).splitlines()
            if line.startswith("#") and not line.startswith("#!")}


def _code_files():
    for top in ("fastnn", "kernels", "scripts", "tests", "asv_benchmarks"):
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    yield os.path.relpath(os.path.join(folder, name), ROOT)


@pytest.mark.parametrize("page", PAGES)
def test_every_link_of_a_page_leads_somewhere(page):
    here = os.path.dirname(page)
    for target in LINK.findall(_read(page)):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        path = os.path.normpath(os.path.join(here, path)) if path else page
        assert os.path.exists(os.path.join(ROOT, path)), f"{page}: {target} does not exist"
        if anchor:
            assert anchor in _anchors(path), f"{page}: no heading #{anchor} in {path}"


def test_every_repository_path_named_in_docs_and_code_exists():
    missing = []
    for source in PAGES + list(_code_files()):
        for path in REPO_PATH.findall(_read(source)):
            if not os.path.exists(os.path.join(ROOT, path)):
                missing.append(f"{source}: {path}")
    assert missing == []


def test_nothing_cites_files_a_checkout_does_not_have():
    for source in PAGES + list(_code_files()):
        if source == os.path.join("tests", "test_docs.py"):
            continue
        text = _read(source)
        assert "DESIGN.md" not in text and "../shared" not in text, source


def _blocks(page):
    return re.findall(r"^```python\n(.*?)^```", _read(page), flags=re.S | re.M)


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)])
def test_every_python_block_runs_as_written(page, tmp_path):
    code = "\n\n".join(_blocks(page))
    env = dict(os.environ, **ENVIRONMENT.get(page, {}))
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"{page}:\n{run.stderr[-3000:]}"


def _help(*args):
    return subprocess.run([sys.executable, "-m", "fastnn", *args, "--help"],
                          capture_output=True, text=True, check=True).stdout


def test_the_command_line_help_lists_every_command_and_bench_its_choices():
    from fastnn.bench.contenders import CONTENDERS
    from fastnn.bench.sklearn_swap import DATASETS
    from fastnn.bench.workloads import WORKLOADS

    top = _help()
    for command in ("train", "predict", "compile", "info", "bench"):
        assert re.search(rf"^\s+{command}\s+\w", top, flags=re.M), command
    bench = _help("bench")
    assert all(name in bench for name in list(WORKLOADS) + list(CONTENDERS))
    sklearn = _help("bench", "--sklearn")
    assert all(name in sklearn for name in DATASETS)
    for text in [top, bench, sklearn] + [_help(c) for c in ("train", "predict", "compile",
                                                             "info")]:
        assert "``" not in text
