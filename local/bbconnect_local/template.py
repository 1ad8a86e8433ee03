"""Read `template.yaml` as CloudFormation sees it: the short-form tags (!Ref, !GetAtt, !Sub, ...)
become their long forms, and intrinsic functions resolve against parameters, conditions and the
physical names of what the local run created."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

_TAGS = {"Ref": "Ref", "Condition": "Condition"}
_FN_TAGS = ("GetAtt", "Sub", "If", "Not", "Equals", "And", "Or", "Join", "Select", "Split", "FindInMap",
            "GetAZs", "ImportValue", "Base64", "Cidr")


class _Loader(yaml.SafeLoader):
    pass


def _construct(tag: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node):
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {tag: value}
    return construct


for _short, _long in _TAGS.items():
    _Loader.add_constructor(f"!{_short}", _construct(_long))
for _fn in _FN_TAGS:
    _Loader.add_constructor(f"!{_fn}", _construct(f"Fn::{_fn}"))


def load_template(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass with CFN tags only


class UnresolvedReference(KeyError):
    pass


class Resolver:
    """Evaluates intrinsic functions. `ref(name)` and `get_att(name, attribute)` give what the local
    run knows about a resource; parameters come from the template's defaults and overrides."""

    def __init__(self, template: dict, parameters: dict[str, Any], pseudo: dict[str, str],
                 ref: Callable[[str], Any], get_att: Callable[[str, str], Any]):
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self._ref, self._get_att = ref, get_att
        self.conditions = {name: self.resolve(expr) for name, expr in (template.get("Conditions") or {}).items()}

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self._ref(name)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.conditions[arg]
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(name, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.resolve(then if self.conditions[name] else otherwise)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Fn::Join":
                return arg[0].join(str(self.resolve(v)) for v in self.resolve(arg[1]))
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::Split":
                return self.resolve(arg[1]).split(arg[0])
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                resource, attribute = name.split(".", 1)
                return str(self._get_att(resource, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


class InvalidParameter(ValueError):
    """A parameter value CloudFormation would refuse before creating anything."""


def check_parameter(name: str, spec: dict, value: Any) -> None:
    """CloudFormation's parameter constraints: AllowedValues, AllowedPattern (the whole value),
    Min/MaxLength for a String, Min/MaxValue for a Number."""
    text = str(value)
    why = spec.get("ConstraintDescription")
    if "AllowedValues" in spec and text not in [str(v) for v in spec["AllowedValues"]]:
        raise InvalidParameter(f"parameter {name}={text!r} is not one of {spec['AllowedValues']}" + (f" ({why})" if why else ""))
    if spec.get("Type") == "Number":
        try:
            number = float(text)
        except ValueError:
            raise InvalidParameter(f"parameter {name}={text!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise InvalidParameter(f"parameter {name}={text} is below its MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise InvalidParameter(f"parameter {name}={text} is above its MaxValue {spec['MaxValue']}")
        return
    if "AllowedPattern" in spec and re.fullmatch(spec["AllowedPattern"], text) is None:
        raise InvalidParameter(f"parameter {name}={text!r} does not match {spec['AllowedPattern']}" + (f" ({why})" if why else ""))
    if "MinLength" in spec and len(text) < int(spec["MinLength"]):
        raise InvalidParameter(f"parameter {name} is shorter than its MinLength {spec['MinLength']}")
    if "MaxLength" in spec and len(text) > int(spec["MaxLength"]):
        raise InvalidParameter(f"parameter {name} is longer than its MaxLength {spec['MaxLength']}")


def parameter_values(template: dict, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters' values (overrides, else defaults), refused as CloudFormation refuses them."""
    specs = template.get("Parameters") or {}
    unknown = sorted(set(overrides or {}) - set(specs))
    if unknown:
        raise InvalidParameter(f"the template has no parameter {', '.join(unknown)}")
    values = {}
    for name, spec in specs.items():
        value = (overrides or {}).get(name, spec.get("Default"))
        if value is None:
            raise InvalidParameter(f"template parameter {name} has no default and no value was given")
        check_parameter(name, spec, value)
        values[name] = value
    return values


def substitute_definition(definition: str, substitutions: dict[str, Any]) -> str:
    """What `DefinitionSubstitutions` does: `${Name}` -> value; a name without a value is an error."""
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise UnresolvedReference(f"the state machine definition uses ${{{name}}}, which DefinitionSubstitutions does not give")
        return str(substitutions[name])

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, definition)
