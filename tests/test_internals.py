"""The Ray, Optuna and standard-library internals the product relies on, pinned; and no private
member of `ray`, `optuna` or `torchjd` used anywhere in the product outside `study.internals`.

Each pin checks the member `study.internals` reads, with the shape the product uses, on the
real libraries (no Ray cluster started), and names the installed versions when it fails: an
upgrade that moves one fails here first, not in the middle of a study. `docs/internals.md` says
what each is for and what breaks.

The scan (`private_uses`) reads every product .py file's syntax tree: imports of a private
module or name of those libraries, strings naming one (code run in a child process, module
names imported by name), `x._name` on anything but `self`/`cls`, one of our own modules or
`os._exit` (documented), `getattr(x, "_name")`, `self._name` in a subclass of a library
class where `_name` is the library's or not our class's own, and Ray's `RAY_AIR_NEW_OUTPUT`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from study import internals

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("ray", "optuna", "torchjd")
VERSIONS = ", ".join(f"{lib} {importlib.metadata.version(lib)}" for lib in LIBRARIES)
PYTHON = sys.version.split()[0]
CHANGED = f"changed in the installed {VERSIONS} (python {PYTHON}): see docs/internals.md"
ALLOWED = {("os", "_exit")}  # documented in the standard library
INTERNALS = Path(internals.__file__).resolve()


# ---------------------------------------------------------------------------------------------
# the pins


def _define(trial: optuna.trial.Trial) -> dict:
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    return {"epochs": 2}


def _searcher(points=None):
    from ray.tune.search.optuna import OptunaSearch

    return OptunaSearch(
        space=_define,
        metric="score",
        mode="max",
        points_to_evaluate=points,
        sampler=optuna.samplers.TPESampler(seed=0),
    )


def test_a_saved_optuna_search_state_holds_what_the_migration_reads(tmp_path):
    """Ray's OptunaSearch pickles its `__dict__` (`save`, and `tuner.pkl` by default): a study
    saved while StudySearch subclassed it resumes from these fields."""
    import pickle

    points = [{"lr": 0.01}]
    searcher = _searcher(points)
    searcher.suggest("t1")
    searcher.save(str(tmp_path / "state.pkl"))
    state = pickle.loads((tmp_path / "state.pkl").read_bytes())
    assert isinstance(state, dict) and "_ot_study" in state, CHANGED
    theirs = [v for k, v in internals.OPTUNA_SEARCH_FIELDS.items() if k != "max_trials"]
    assert set(theirs) <= set(state), CHANGED
    fields = internals.optuna_search_fields(state)
    assert fields["define"] is _define and fields["points_to_evaluate"] == points, CHANGED
    assert fields["study_name"] == "optuna" and fields["storage"] is None, CHANGED
    assert isinstance(fields["sampler"], optuna.samplers.TPESampler), CHANGED
    assert internals.optuna_search_fields({"define": _define}) is None  # not an old state


def test_asha_keeps_its_rungs_per_trial_and_what_it_records():
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import ASHAScheduler

    sched = ASHAScheduler(
        time_attr="epoch", metric="score", mode="min", max_t=9, grace_period=1, reduction_factor=3
    )
    assert internals.asha_judges(sched) == ("epoch", "score", -1.0), CHANGED
    trial = Trial("fake", config={}, trial_id="t1", stub=True)
    sched.on_trial_add(None, trial)
    rungs = internals.asha_rungs(sched, "t1")
    assert [m for m, _ in rungs] == [9, 3, 1], CHANGED  # the top rung (max_t) first
    assert all(isinstance(r, dict) for _, r in rungs), CHANGED
    sched.on_trial_result(None, trial, {"epoch": 1, "score": 0.25})
    assert dict(rungs)[1] == {"t1": -0.25}, CHANGED  # recorded as metric_op * score


def test_tune_honours_a_progress_reporter_only_with_the_legacy_output(monkeypatch):
    from ray.tune.experimental.output import get_air_verbosity

    monkeypatch.setenv(internals.LEGACY_OUTPUT_ENV, internals.LEGACY_OUTPUT_VALUE)
    assert get_air_verbosity(1) is None, CHANGED  # None: Tune's classic engine, our reporter
    monkeypatch.delenv(internals.LEGACY_OUTPUT_ENV)
    assert get_air_verbosity(1) is not None, CHANGED
    env = {internals.LEGACY_OUTPUT_ENV: "1"}
    internals.keep_legacy_reporter(env)
    assert env == {internals.LEGACY_OUTPUT_ENV: "1"}  # the user's choice is kept
    internals.keep_legacy_reporter(env := {})
    assert env == {internals.LEGACY_OUTPUT_ENV: internals.LEGACY_OUTPUT_VALUE}


def test_the_gcs_client_and_optunas_models_are_where_we_import_them():
    raylet = importlib.import_module(internals.GCS_CLIENT_MODULE)
    gcs = getattr(raylet, internals.GCS_CLIENT_CLASS)
    assert hasattr(gcs, "__getattr__"), CHANGED  # forwards its calls to the inner client
    call = raylet.InnerGcsClient.get_all_node_info
    assert "timeout" in inspect.signature(call).parameters, CHANGED
    compile(internals.gcs_probe_code(15), "<probe>", "exec")
    models = importlib.import_module(internals.OPTUNA_RDB_MODELS)
    assert hasattr(models, "TrialModel"), CHANGED


def test_the_exit_handlers_run_in_a_normal_exits_order():
    code = (
        "import atexit, os\n"
        "from study.internals import run_exit_handlers\n"
        "atexit.register(print, 'first registered, last run')\n"
        "atexit.register(print, 'last registered, first run')\n"
        "run_exit_handlers()\n"
        "os._exit(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["last registered, first run", "first registered, last run"]


def test_every_internal_is_documented():
    doc = (ROOT / "docs" / "internals.md").read_text()
    ours = [
        n
        for n, v in vars(internals).items()
        if (n.isupper() and n != "TYPE_CHECKING")
        or (inspect.isfunction(v) and v.__module__ == internals.__name__)
    ]
    missing = [n for n in ours if f"`{n}" not in doc]
    assert not missing, f"not in docs/internals.md: {missing}"


# ---------------------------------------------------------------------------------------------
# the scan


NAMED = re.compile(r"\b(?:ray|optuna|torchjd)(?:\.\w+)*\._\w+")
ACCESSORS = ("getattr", "setattr", "hasattr", "delattr")
KNOBS = (internals.LEGACY_OUTPUT_ENV,)  # undocumented environment switches of Ray


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _product_roots() -> set[str]:
    return {p.stem for p in ROOT.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """{name bound by an import: the module or object path it names}."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _resolve(path: str) -> object | None:
    """The object a dotted path names, imported; None when it cannot be."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:
            continue
        for p in parts[i:]:
            obj = getattr(obj, p, None)
        return obj
    return None


def _library_privates(cls: type) -> set[str]:
    """The private names a library class and its library ancestors define or set on self."""
    names = set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] not in LIBRARIES:
            continue
        names |= {n for n in vars(klass) if _private(n)}
        try:
            names |= set(re.findall(r"self\.(_[A-Za-z]\w*)", inspect.getsource(klass)))
        except (OSError, TypeError):
            pass
    return names


def _library_bases(node: ast.ClassDef, aliases, local: dict[str, set[str]]) -> set[str] | None:
    """The library-private names of a class's bases; None when no base is a library class."""
    found = None
    for base in node.bases:
        if isinstance(base, ast.Name) and base.id in local:
            found = (found or set()) | local[base.id]
            continue
        dotted = ast.unparse(base)
        head, _, rest = dotted.partition(".")
        obj = _resolve(".".join(filter(None, (aliases.get(head, head), rest))))
        if isinstance(obj, type) and any(
            k.__module__.split(".")[0] in LIBRARIES for k in obj.__mro__
        ):
            found = (found or set()) | _library_privates(obj)
    return found


def _own_names(node: ast.ClassDef) -> set[str]:
    own = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
            own.add(sub.name)
        targets = sub.targets if isinstance(sub, ast.Assign) else []
        targets += [sub.target] if isinstance(sub, ast.AnnAssign | ast.AugAssign) else []
        for t in targets:
            if isinstance(t, ast.Name):
                own.add(t.id)
            elif isinstance(t, ast.Attribute) and ast.unparse(t.value) == "self":
                own.add(t.attr)
    return own


def _accesses(tree: ast.AST):
    """(node, owner expression, private name) for `x._name` and `getattr(x, "_name")`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            yield node, node.value, node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ACCESSORS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            yield node, node.args[0], node.args[1].value


def _self_uses(tree: ast.AST, aliases) -> dict[int, str]:
    """{id of an access node: why} for `self._name` in library subclasses."""
    found, local = {}, {}
    classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    for node in sorted(classes, key=lambda n: n.lineno):
        privates = _library_bases(node, aliases, local)
        if privates is None:
            continue
        local[node.name] = privates
        own = _own_names(node) - privates
        for sub, owner, name in _accesses(node):
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                if name in privates or name not in own:
                    found[id(sub)] = f"self.{name}: a library base class's private member"
    return found


def _import_uses(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            mods = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for mod in mods:
            if mod.split(".")[0] in LIBRARIES and any(_private(p) for p in mod.split(".")):
                found.append((node.lineno, f"import of {mod}"))
    return found


def private_uses(source: str, product: set[str] | None = None) -> list[tuple[int, str]]:
    """[(line, what)] for each use of a private member of ray, optuna or torchjd in `source`
    (see the module docstring); `product`: the top-level names of our own modules."""
    product = _product_roots() if product is None else product
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = _import_uses(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for match in NAMED.finditer(node.value):
                found.append((node.lineno, f"string naming {match.group(0)}"))
            found += [(node.lineno, f"knob {k}") for k in KNOBS if k in node.value]
    selfish = _self_uses(tree, aliases)
    for node, owner, name in _accesses(tree):
        if id(node) in selfish:
            found.append((node.lineno, selfish[id(node)]))
            continue
        if isinstance(owner, ast.Name):
            if owner.id in ("self", "cls") or (owner.id, name) in ALLOWED:
                continue
            if aliases.get(owner.id, "").split(".")[0] in product:
                continue  # one of our own modules
        found.append((node.lineno, f"{ast.unparse(owner)}.{name}"))
    return sorted(set(found))


def _product_files() -> list[Path]:
    skip = {"tests", "docs"}
    return [
        p
        for p in sorted(ROOT.rglob("*.py"))
        if not any(part.startswith(".") or part in skip for part in p.relative_to(ROOT).parts)
        and "site-packages" not in p.parts
    ]


def test_no_private_member_of_ray_optuna_or_torchjd_outside_the_internals_module():
    uses = []
    for path in _product_files():
        if path.resolve() == INTERNALS:
            continue
        for line, what in private_uses(path.read_text()):
            uses.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not uses, "move these into study/internals.py (docs/internals.md):\n" + "\n".join(uses)


def test_the_internals_module_is_where_the_scan_finds_them():
    found = {what for _, what in private_uses(INTERNALS.read_text())}
    for member in ("_trial_info", "_rungs", "_metric_op", "_run_exitfuncs"):
        assert any(member in w for w in found), (member, found)
    assert any("ray._raylet" in w for w in found) and any("_rdb" in w for w in found)


SNIPPETS = {
    "self._ot_study in a subclass of OptunaSearch": """
        from ray.tune.search.optuna import OptunaSearch
        class S(OptunaSearch):
            def f(self):
                return self._ot_study.trials
    """,
    "a subclass assigning Ray's own private name": """
        from ray.tune.search.optuna import OptunaSearch
        class S(OptunaSearch):
            def __init__(self):
                self._ot_trials = {}
    """,
    "a subclass of a subclass": """
        from ray.tune import schedulers
        class A(schedulers.ASHAScheduler):
            pass
        class B(A):
            def f(self):
                return self._trial_info
    """,
    "from ray._private import x": "from ray._private import worker\n",
    "import optuna's private module": "import optuna.storages._rdb.models\n",
    "a frozen trial's id": "def f(frozen):\n    return frozen._trial_id\n",
    "a bracket's rungs": "def f(b):\n    return b._rungs\n",
    "a private module by name": 'CODE = "from ray._raylet import GcsClient"\n',
    "getattr with a private name": 'def f(s):\n    return getattr(s, "_ot_trials")\n',
    "super()'s private method": """
        from ray.tune.search.optuna import OptunaSearch
        class S(OptunaSearch):
            def f(self):
                return super()._setup_study("max")
    """,
    "atexit's private function": "import atexit\natexit._run_exitfuncs()\n",
    "Ray's output-engine switch": 'import os\nos.environ["RAY_AIR_NEW_OUTPUT"] = "0"\n',
}
CLEAN = """
    import os
    from analysis import table as table_mod
    from ray.tune.search.optuna import OptunaSearch
    class S(OptunaSearch):
        def __init__(self):
            self._mine = 1
        def _helper(self):
            return self._mine
    def f():
        table_mod._text("x")
        os._exit(0)
"""


@pytest.mark.parametrize("name", SNIPPETS)
def test_the_scan_finds_each_kind_of_private_use(name):
    assert private_uses(textwrap.dedent(SNIPPETS[name])), name


def test_the_scan_leaves_our_own_private_names_alone():
    assert private_uses(textwrap.dedent(CLEAN)) == []
