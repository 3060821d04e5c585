"""Run configs: YAML, layered defaults, ``--set`` overrides, and validation before any work.

Layers, lowest first: ``defaults/base.yaml`` < ``defaults/datasets/<dataset>.yaml`` <
``defaults/methods/<method>.yaml`` (its ``params``, then its ``by_dataset.<dataset>`` block) <
the experiment file < ``--set key=value``. The resolved config is written into every result.

``model.params`` belong to one backbone: a layer that names another backbone starts from that
backbone's own defaults instead of inheriting the params of the one it replaces.

``validate`` checks everything that needs no data: the schema, byte sizes, registered names, and
the params of the method (names and types from its defaults YAML, domains from
``schemas/method_params.yaml``), of the data set (names and types from its defaults YAML) and of
the backbone (its builder's signature).

Every YAML file and ``--set`` value is read by ``braincl.yamlio``: numbers as YAML 1.2 reads them
(``1e-3`` is a float), and a key given twice is an error. Integers in the schema are ints: a
``1e3`` where a count is expected is refused with the whole number to write.
"""

from __future__ import annotations

import copy
import inspect
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from . import yamlio
from .units import parse_bytes


class ConfigError(ValueError):
    """A config that cannot be run. The message says what is wrong and what is valid."""


def _package_yaml(*parts: str) -> dict | None:
    node = resources.files("braincl").joinpath(*parts)
    if not node.is_file():
        return None
    return yamlio.loads(node.read_text()) or {}


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key=value (for example train.epochs=3), got {item!r}")
    key, raw = item.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set has an empty key in {item!r}")
    try:
        value = yamlio.loads(raw) if raw != "" else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({yamlio.problem(err)})") from None
    return key.split("."), value


def apply_overrides(cfg: dict, overrides: list[str] | None) -> dict:
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        path, value = parse_override(item)
        node = cfg
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return cfg


def _check_override_shapes(cfg: dict, overrides: list[str] | None) -> None:
    """Refuse ``--set`` items that put a single value where the config has a section (``method=er``)
    or that reach into a single value (``seed.x=1``): either would silently lose settings."""
    for item in overrides or []:
        path, value = parse_override(item)
        node: Any = cfg
        for depth, part in enumerate(path):
            key = ".".join(path[: depth + 1])
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
            last = depth == len(path) - 1
            if last and isinstance(node, dict) and node and value is not None and not isinstance(value, dict):
                raise ConfigError(
                    f"--set {item}: {key} is a section of the config, not a single value; set one of its keys, "
                    f"e.g. --set {key}.{next(iter(node))}={item.split('=', 1)[1]} (keys here: {', '.join(node)})")
            if not last and node is not None and not isinstance(node, dict):
                raise ConfigError(f"--set {item}: {key} is a single value ({node!r}), not a section with keys")


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        data = yamlio.read_file(path)
    except yamlio.YamlFileError as err:
        raise ConfigError(str(err)) from None
    if data is None:
        raise ConfigError(
            f"{path} is empty: an experiment file must hold a mapping of settings, e.g. method: {{name: er}} "
            "(write {} to run every default on purpose)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings at the top level, not a {type(data).__name__}")
    return data


def method_defaults(method: str, dataset: str) -> dict:
    """The method's YAML defaults as a config fragment (``method.params``, optionally ``train``)."""
    data = _package_yaml("defaults", "methods", f"{method}.yaml") or {}
    fragment = {"method": {"params": data.get("params", {}) or {}}}
    if data.get("train"):
        fragment["train"] = data["train"]
    specific = (data.get("by_dataset") or {}).get(dataset) or {}
    if specific:
        fragment = deep_merge(fragment, {"method": {"params": specific.get("params", {}) or {}}})
        if specific.get("train"):
            fragment = deep_merge(fragment, {"train": specific["train"]})
    return fragment


def _section(cfg: dict, key: str) -> dict:
    value = cfg.get(key) if isinstance(cfg, dict) else None
    return value if isinstance(value, dict) else {}


def _merge_layer(cfg: dict, layer: dict) -> dict:
    """``deep_merge``, except that a layer naming another backbone drops the params set for the
    previous one: they belong to that backbone (``width`` means nothing to ``resnet18``)."""
    model = _section(layer, "model")
    current = _section(cfg, "model")
    if "backbone" in model and "backbone" in current and model["backbone"] != current["backbone"]:
        cfg = {**cfg, "model": {**current, "params": {}}}
    return deep_merge(cfg, layer)


def resolve(user: dict, overrides: list[str] | None = None) -> dict:
    """Layer the defaults under ``user`` and ``overrides``; return the full config (unvalidated)."""
    over = apply_overrides({}, overrides)
    named = deep_merge(user, over)
    cfg = _package_yaml("defaults", "base.yaml")
    dataset = _section(named, "dataset").get("name", cfg["dataset"]["name"])
    method = _section(named, "method").get("name", cfg["method"]["name"])
    dataset_defaults = _package_yaml("defaults", "datasets", f"{dataset}.yaml") or {}
    if dataset_defaults.get("dataset", {}).get("transforms"):
        # a data set's transforms replace the generic ones whole: lists do not merge
        cfg["dataset"]["transforms"] = {}
    for layer in (dataset_defaults, method_defaults(str(method), str(dataset)), user):
        cfg = _merge_layer(cfg, layer)
    _check_override_shapes(cfg, overrides)
    return _merge_layer(cfg, over)


def _schema() -> dict:
    return _package_yaml("schemas", "config.schema.yaml")


def schema_validator(schema: dict):
    """A JSON-schema validator whose integers are ints: JSON Schema also counts ``1000.0`` as an
    integer, but code would then get a float where it counts (``range(10.0)`` fails mid-run), and a
    YAML ``1e3`` is the float ``1000.0``."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    strict = base.TYPE_CHECKER.redefine("integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool))
    return jsonschema.validators.extend(base, type_checker=strict)(schema)


def _integer_hint(value: Any) -> str:
    """Why a float is not an integer here, and what to write instead."""
    if isinstance(value, float) and value.is_integer():
        return (f"; write the whole number {int(value)} (a decimal point or an exponent, as in 1000.0 or 1e3, "
                "makes a decimal number)")
    return ""


def format_schema_error(err) -> str:
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "type" and "integer" in ([err.validator_value] if isinstance(err.validator_value, str)
                                                 else err.validator_value):
        return f"{where}: {err.message}{_integer_hint(err.instance)}"
    if err.validator == "additionalProperties":
        allowed = sorted((err.schema.get("properties") or {}).keys())
        return f"{where}: {err.message}; valid keys here: {', '.join(allowed)}"
    if err.validator == "enum":
        return f"{where}: {err.instance!r} is not one of {err.validator_value}"
    return f"{where}: {err.message}"


def _problems(lines: list[str]) -> ConfigError:
    if len(lines) == 1:
        return ConfigError(f"invalid config: {lines[0]}")
    return ConfigError("invalid config:\n  - " + "\n  - ".join(lines))


# ---------------------------------------------------------------------- params of named parts
_TYPES = (  # (python type of a default, what a value must be, accepted python types)
    (bool, "true or false", (bool,)),
    (int, "an integer", (int,)),
    (float, "a number", (int, float)),
    (str, "a string", (str,)),
    ((list, tuple), "a list", (list, tuple)),
    (dict, "a mapping", (dict,)),
)


def _type_problem(where: str, value: Any, default: Any, owner: str) -> str | None:
    """A value whose type differs from its non-null default's (null always passes: many params
    use it for "derive from another setting")."""
    if default is None or value is None:
        return None
    for default_type, wanted, accepted in _TYPES:
        if isinstance(default, default_type):
            ok = isinstance(value, accepted) and not (isinstance(value, bool) and bool not in accepted)
            if not ok:
                hint = _integer_hint(value) if default_type is int else ""
                return f"{where}: {value!r} is not {wanted} (the default for {owner} is {default!r}){hint}"
            return None
    return None


def _param_problems(section: str, params: Any, defaults: dict, owner: str, valid: list[str]) -> list[str]:
    if not isinstance(params, dict):
        return [f"{section}: expected a mapping of parameters, got {params!r}"]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        return [f"{section}: unknown parameter(s) {', '.join(map(str, unknown))} for {owner}; "
                f"valid: {', '.join(sorted(valid)) or '(none)'}"]
    return [p for p in (_type_problem(f"{section}.{k}", v, defaults.get(k), owner) for k, v in params.items()) if p]


def method_param_defaults(method: str) -> dict:
    """Every param a method defines, with its non-null default where any layer of its YAML gives
    one (``params``, then each ``by_dataset`` block)."""
    data = _package_yaml("defaults", "methods", f"{method}.yaml") or {}
    layers = [data.get("params") or {}] + [(block or {}).get("params") or {}
                                            for block in (data.get("by_dataset") or {}).values()]
    out: dict = {}
    for layer in layers:
        for key, value in layer.items():
            if out.get(key) is None:
                out[key] = value
    return out


def _method_problems(method: str, params: Any) -> list[str]:
    import jsonschema

    defaults = method_param_defaults(method)
    owner = f"method {method!r}"
    problems = _param_problems("method.params", params, defaults, owner, list(defaults))
    if problems:
        return problems
    constraints = _package_yaml("schemas", "method_params.yaml") or {}
    for key, fragment in (constraints.get(method) or {}).items():
        if key not in params or key not in defaults:
            continue
        schema = {"$defs": constraints.get("$defs") or {}, **fragment}
        error = jsonschema.exceptions.best_match(schema_validator(schema).iter_errors(params[key]))
        if error is not None:
            inner = "".join(f".{p}" for p in error.absolute_path)
            problems.append(f"method.params.{key}{inner}: {error.message} (for {owner})")
    return problems


# Params a data set's builder reads that its defaults YAML does not list (the YAML is the record of
# the others). Until those files list them, they are known here.
_DATASET_PARAMS_BEYOND_DEFAULTS = {"imagefolder": ("channels",), "imagenet100": ("channels",)}


def _dataset_problems(name: str, params: Any) -> list[str]:
    data = _package_yaml("defaults", "datasets", f"{name}.yaml")
    if data is None:
        return []  # a data set without a defaults file declares no params to check against
    defaults = dict(_section(_section(data, "dataset"), "params"))
    valid = list(defaults) + list(_DATASET_PARAMS_BEYOND_DEFAULTS.get(name, ()))
    return _param_problems("dataset.params", params, defaults, f"data set {name!r}", valid)


def _backbone_problems(name: str, builder, params: Any) -> list[str]:
    try:
        signature = inspect.signature(builder)
    except (TypeError, ValueError):
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()):
        return []
    given = {k: v.default for k, v in signature.parameters.items() if k not in ("in_channels", "image_size")}
    defaults = {k: (None if v is inspect.Parameter.empty else v) for k, v in given.items()}
    return _param_problems("model.params", params, defaults, f"backbone {name!r}", list(given))


def validate(cfg: dict, check_names: bool = True) -> dict:
    """Validate a resolved config. Raises ConfigError listing every problem found."""
    validator = schema_validator(_schema())
    problems = [format_schema_error(e) for e in sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))]
    if problems:
        raise _problems(problems)

    try:
        budget = None if cfg["memory"].get("budget") is None else parse_bytes(cfg["memory"]["budget"])
    except ValueError as err:
        raise ConfigError(f"memory.budget: {err}") from None

    scenario = cfg["scenario"]
    if scenario.get("tasks"):
        seen: dict[int, int] = {}
        for t, task in enumerate(scenario["tasks"]):
            for c in task:
                if c in seen:
                    where = f"task {seen[c] + 1} and task {t + 1}" if seen[c] != t else f"task {t + 1} twice"
                    raise ConfigError(f"scenario.tasks: class {c} appears in {where}; each class belongs to one task")
                seen[c] = t

    if check_names:
        from .registry import BACKBONES, DATASETS, METHODS

        for kind, registry, name in (
            ("method.name", METHODS, cfg["method"]["name"]),
            ("dataset.name", DATASETS, cfg["dataset"]["name"]),
            ("model.backbone", BACKBONES, cfg["model"]["backbone"]),
        ):
            if name not in registry:
                raise ConfigError(f"{kind}: unknown {registry.kind} {name!r}; valid: {', '.join(registry.names())}")
        method_cls = METHODS.get(cfg["method"]["name"])
        problems = (_method_problems(cfg["method"]["name"], cfg["method"].get("params") or {})
                    + _dataset_problems(cfg["dataset"]["name"], cfg["dataset"].get("params") or {})
                    + _backbone_problems(cfg["model"]["backbone"], BACKBONES.get(cfg["model"]["backbone"]),
                                         cfg["model"].get("params") or {}))
        if problems:
            raise _problems(problems)
        if getattr(method_cls, "needs_budget", True) and budget is None:
            raise ConfigError(
                f"memory.budget is required for method {cfg['method']['name']!r}; "
                "give it in bytes with a unit, e.g. memory.budget=500KB")
    return cfg


def load(path: str | Path | None, overrides: list[str] | None = None, check_names: bool = True) -> dict:
    user = load_yaml(path) if path is not None else {}
    return validate(resolve(user, overrides), check_names=check_names)


def get(cfg: dict, dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
