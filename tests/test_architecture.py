"""The layout's rules, checked on the source: no import cycle between fastnn's modules
(imports inside functions count: they only hide a cycle), and the Python layer reaches
the kernels through their documented modules only."""
import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)


def _modules():
    """module name -> source path, for fastnn/ and kernels/ (imported as fastnn.kernels)."""
    found = {}
    for top, package in (("fastnn", "fastnn"), ("kernels", "fastnn.kernels")):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, os.path.join(ROOT, top))[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join([package, *parts])] = path
    return found


def _imports(name, path, modules):
    """The modules of ``modules`` that the module ``name`` imports, anywhere in it; an
    import of a submodule (``from package import submodule``) is one of the submodule."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            submodules = {f"{base}.{a.name}" for a in node.names} & modules.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):
                found.add(base)
    return {m for m in found if m in modules and m != name}


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    modules = _modules()
    assert {"fastnn.model", "fastnn.kernels._network", "fastnn.kernels.cuda"} <= modules.keys()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert graph["fastnn.model"], "the import finder found nothing"
    assert _cycles(graph) == []


def test_the_python_layer_reaches_the_kernels_through_the_contract():
    """fastnn/ imports kernels/ as ``fastnn.kernels.contract`` or the public names of
    ``fastnn.kernels`` only, and names no private kernel module (``kernels._x``)."""
    import re

    import fastnn.kernels

    public = set(fastnn.kernels.__all__) | {"contract"}
    modules = _modules()
    layer = {name: path for name, path in modules.items()
             if not name.startswith("fastnn.kernels")}
    assert "fastnn.model" in layer and "fastnn.bench.contenders" in layer
    private_text = re.compile(r"kernels\._|from \.+_[a-z]")
    wrong = []
    for name, path in layer.items():
        source = open(path).read()
        wrong += [f"{name}: names {m.group()!r}" for m in private_text.finditer(source)]
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                wrong += [f"{name}: import {a.name}" for a in node.names
                          if a.name.startswith("fastnn.kernels") and a.name not in
                          ("fastnn.kernels", "fastnn.kernels.contract")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "fastnn.kernels"):
                if node.module == "fastnn.kernels":
                    wrong += [f"{name}: from fastnn.kernels import {a.name}"
                              for a in node.names if a.name not in public]
                elif node.module != "fastnn.kernels.contract":
                    wrong.append(f"{name}: from {node.module} import ...")
    assert wrong == []


#: public signatures that keep their many keyword arguments (scikit-learn's and fit's)
PUBLIC_SIGNATURES = {("fastnn.model", "fit"), ("fastnn.sklearn", "__init__")}


def test_no_internal_function_takes_more_than_8_parameters():
    """Arguments travel in records (fastnn.fit_config.FitConfig, an engine's fields), not
    long positional lists."""
    long_lists = []
    for name, path in _modules().items():
        if name.startswith("fastnn.kernels"):
            continue
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                params = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
                count = sum(p is not None and p.arg not in ("self", "cls") for p in params)
                if count > 8 and (name, node.name) not in PUBLIC_SIGNATURES:
                    long_lists.append(f"{name}.{node.name}: {count}")
    assert long_lists == []
