"""The docs and the architecture they describe: every docstring example and every docs page's Python runs,
every documented `medzoo` command line parses, the site builds with warnings as errors, the import graph keeps
DESIGN.md's layers and has no cycle, and the README stays a newcomer's first page."""

import doctest
import importlib
import os
import pkgutil
import re
import shlex
import subprocess
import sys

import pytest

import medzoo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
PAGES = sorted(os.path.relpath(os.path.join(folder, name), REPO)
               for folder, _, names in os.walk(os.path.join(REPO, "docs")) for name in names if name.endswith(".md"))  # fmt: skip
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```", re.S | re.M)


def medzoo_modules():
    """Every module of the medzoo package, by name."""
    return sorted(name for _, name, _ in pkgutil.walk_packages(medzoo.__path__, "medzoo."))


def code_blocks(path, language):
    """The fenced `language` blocks of a markdown file, dedented."""
    with open(os.path.join(REPO, path)) as handle:
        text = handle.read()
    return [re.sub(rf"^{match['indent']}", "", match["body"], flags=re.M)
            for match in FENCE.finditer(text) if match["lang"] == language]  # fmt: skip


def shell_commands(line):
    """The commands of one shell line, as word lists: split at `&&`, `||`, `;` and `|`, comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|"):
            commands.append([])
        else:
            commands[-1].append(token)
    return commands


@pytest.mark.parametrize("module", medzoo_modules())
def test_docstring_examples_run(module):
    """Doctests are collected from every module, not from a hand-kept list."""
    failures, _ = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert failures == 0


@pytest.mark.parametrize("page", [page for page in PAGES if code_blocks(page, "python")] + ["README.md"])
def test_python_examples_in_the_docs_run(page, tmp_path, monkeypatch):
    """A page's Python blocks run in order, in one namespace, in an empty folder."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs:{page}"}
    blocks = code_blocks(page, "python")
    assert blocks or page == "README.md"
    for block in blocks:
        exec(compile(block, page, "exec"), namespace)  # noqa: S102  (the docs' own examples)


def test_every_documented_command_line_parses():
    """Each `medzoo ...` line of a bash block (README and docs) is accepted by the command's parser."""
    from medzoo.cli import build_parser

    parser, checked = build_parser(), 0
    for page in ["README.md", *PAGES]:
        for block in code_blocks(page, "bash"):
            for line in block.replace("\\\n", " ").splitlines():
                for words in shell_commands(line):
                    if words[:1] != ["medzoo"]:
                        continue
                    try:
                        parser.parse_args(words[1:])
                    except SystemExit as error:
                        raise AssertionError(f"{page}: `{' '.join(words)}` does not parse") from error
                    checked += 1
    assert checked >= 20


def test_every_documented_config_is_valid():
    """YAML blocks in the docs are configs: their experiment keys and training settings pass validation."""
    import yaml

    from medzoo.evaluate.experiment import experiment_settings
    from medzoo.train.config import resolve_config

    blocks = [(page, block) for page in ["README.md", *PAGES] for block in code_blocks(page, "yaml")]
    for page, block in blocks:
        _, training = experiment_settings(yaml.safe_load(block), page)
        resolve_config(None, [training])
    assert blocks


def test_docs_site_builds_with_warnings_as_errors(tmp_path):
    """mkdocs --strict: a broken link, a missing page or a docstring griffe cannot read fails the build."""
    done = subprocess.run([os.path.join(BIN, "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert os.path.isfile(tmp_path / "site" / "api" / "data" / "index.html")


def test_api_pages_cover_every_module():
    """A new module shows up in the API reference or this test names it."""
    documented = set()
    for page in PAGES:
        if page.startswith(os.path.join("docs", "api")):
            with open(os.path.join(REPO, page)) as handle:
                documented |= set(re.findall(r"^::: (\S+)", handle.read(), re.M))
    public = {name for name in medzoo_modules() if not name.rsplit(".", 1)[-1].startswith("_")}
    assert public - documented == set()


def test_layer_contract_holds():
    """DESIGN.md's layers, as import-linter contracts in setup.cfg: nothing imports upward, no system another."""
    done = subprocess.run([os.path.join(BIN, "lint-imports")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 kept, 0 broken" in done.stdout


def test_import_graph_has_no_cycle():
    """No module reaches itself through imports (strongly connected components of one module only)."""
    import grimp

    graph = grimp.build_graph("medzoo")
    edges = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(module):  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert cycles == []


def test_readme_is_a_first_page():
    """Under 300 lines, the two set-up commands first, one example per system, the rest linked from the docs."""
    with open(os.path.join(REPO, "README.md")) as handle:
        text = handle.read()
    assert text.count("\n") < 300
    first_block = code_blocks("README.md", "bash")[0]
    assert first_block.splitlines()[:2] == [line for line in first_block.splitlines() if line.startswith("make ")][:2]
    assert {"make demo", "make test"} <= {line.split("#")[0].strip() for line in first_block.splitlines()}
    for system in ("S1", "S2", "S3", "S4", "S5"):
        assert system in text
    for page in ("docs/systems/video.md", "docs/extending.md", "docs/architecture.md"):
        assert page in text


def test_installed_without_a_backend_the_models_name_the_extra(tmp_path):
    """`pip install medzoo` (no extras) in a fresh virtualenv: importing works, a model builder fails with one
    line naming the extra to install, not a traceback deep inside Keras."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for packages in (["--no-deps", REPO], ["-c", os.path.join(REPO, "constraints.txt"), "keras"]):  # not TensorFlow
        install = subprocess.run(pip + packages, capture_output=True, text=True, timeout=600)
        assert install.returncode == 0, install.stderr[-3000:]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KERAS_HOME": str(tmp_path / "keras")}
    check = "import medzoo; print(medzoo.__version__); from medzoo import build_cnn_lstm"
    done = subprocess.run([python, "-c", check], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 1 and done.stdout.strip() == medzoo.__version__
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: medzoo's models need Keras' tensorflow backend, which is not installed: "
                           'pip install "medzoo[cpu]"'), done.stderr
