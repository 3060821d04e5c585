"""The one YAML reader of the suite: experiment files, defaults, ``--set`` values and the workflow
config all go through ``loads`` / ``read_file``.

It is PyYAML's safe loader with two changes:

- Numbers are read as YAML 1.2 reads them (the core schema, https://yaml.org/spec/1.2.2/#1032-tag-resolution):
  ``1e-3``, ``1E-3``, ``-2e4``, ``5e+2`` and ``.5`` are floats, as researchers write learning
  rates. PyYAML follows YAML 1.1, where a float needs a dot (``1.0e-3``) and ``1e-3`` is a string.
  Integers are decimal (``010`` is ten, not the YAML 1.1 octal eight; ``1:30`` is a string, not the
  YAML 1.1 base-60 ninety), or ``0x``/``0o``/``0b`` prefixed; ``_`` may group digits (``1_000``).
  Quoted scalars stay strings, and booleans and nulls are read as before.
- A key given twice in one mapping, at any depth, is an error naming both lines: YAML requires
  unique keys, and PyYAML would silently keep the last.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

_INT = re.compile(r"""^(?:[-+]?[0-9][0-9_]*
                      |[-+]?0x[0-9a-fA-F_]+
                      |[-+]?0o[0-7_]+
                      |[-+]?0b[01_]+)$""", re.X)
_FLOAT = re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                        |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
                        |[-+]?\.(?:inf|Inf|INF)
                        |\.(?:nan|NaN|NAN))$""", re.X)
_INT_TAG, _FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


class Loader(yaml.SafeLoader):
    """Safe loading with YAML 1.2 numbers and unique keys (see the module's docstring)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._checked_mappings: set[int] = set()

    def flatten_mapping(self, node):
        # PyYAML calls this on every mapping before constructing it (and on every mapping merged
        # in with ``<<``); merging rewrites node.value, so the keys are checked before that, once
        if id(node) not in self._checked_mappings:
            self._checked_mappings.add(id(node))
            self._check_unique_keys(node)
        super().flatten_mapping(node)

    def _check_unique_keys(self, node) -> None:
        first_seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            try:
                key = self.construct_object(key_node)
                hash(key)
            except (yaml.YAMLError, TypeError):
                continue  # the constructor reports an unusable key itself
            if key in first_seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"key {key!r} is given twice in one mapping (first on line {first_seen[key].line + 1}); "
                    "keep one of the two",
                    key_node.start_mark)
            first_seen[key] = key_node.start_mark

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node).replace("_", "")
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-")
        for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
            if text.startswith(prefix):
                return sign * int(text[2:], base)
        return sign * int(text, 10)


# The resolvers of SafeLoader less its YAML 1.1 int and float ones, plus the YAML 1.2 ones.
Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Loader.add_implicit_resolver(_INT_TAG, _INT, list("-+0123456789"))
Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))
Loader.add_constructor(_INT_TAG, Loader.construct_yaml_int)


class YamlFileError(ValueError):
    """A YAML file that cannot be read; the one-line message names the file and the way out."""


def loads(text: str) -> Any:
    """Parse YAML text (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=Loader)


def problem(err: yaml.YAMLError) -> str:
    """One line for a YAML error: where, and what the parser expected."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = " ".join(str(x) for x in (getattr(err, "context", None), getattr(err, "problem", None)) if x)
    return where + (what or str(err).splitlines()[0])


def read_text(path: str | Path, what: str = "config file") -> str:
    """The text of a UTF-8 file; ``YamlFileError`` for a missing, unreadable, binary or non-UTF-8 one."""
    path = Path(path)
    if not path.exists():
        raise YamlFileError(f"{what} not found: {path}")
    if not path.is_file():
        raise YamlFileError(f"{what} {path} is not a regular file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise YamlFileError(f"{what} {path} cannot be read ({err.strerror or err}); check its permissions") from None
    if b"\0" in data:
        raise YamlFileError(f"{what} {path} is a binary file, not YAML text; give the YAML file instead")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise YamlFileError(
            f"{what} {path} is not UTF-8 text (byte {err.start} is 0x{data[err.start]:02x}); give a YAML file "
            "saved as UTF-8") from None


def read_file(path: str | Path, what: str = "config file") -> Any:
    """Read and parse a YAML file; every failure is one ``YamlFileError`` line."""
    text = read_text(path, what)
    try:
        return loads(text)
    except yaml.YAMLError as err:
        raise YamlFileError(f"{path} is not valid YAML: {problem(err)}") from None
