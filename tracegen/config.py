"""Configuration: what traces cannot say (system names, display names, journeys, ETL annotations, noise).

Everything works without a config. Lookup order (first found wins; documented in the README):
1. ``--config FILE`` (a ``tracegen.toml``, or a ``pyproject.toml`` whose ``[tool.tracegen]`` table is used);
2. ``tracegen.toml`` in the first input directory (for a file input, the file's directory);
3. ``tracegen.toml`` in the current directory;
4. ``[tool.tracegen]`` in ``pyproject.toml`` in the current directory.

Validation only rejects what is wrong or contradictory: an unknown key is an error naming the key and the file
(a typo must not silently do nothing), a wrong type names the key and the type expected.

Layout::

    title = "xPRO Open edX"                      # the report's system name
    [systems.openedx]   name = "Open edX"   description = "…"
    [services."xpro-production-edxapp-lms"]
    name = "LMS"  system = "openedx"  technology = "Django"  description = "…"
    kind = "container"  merge_into = "lms"  rename = "…"  hosts = ["courses.xpro.mit.edu"]
    [[scenarios]]  id = "…"  title = "…"  description = "…"  actor = "Learner"  mode_wording = "…"
                   match = [{ service = "…", operation = "GET /courses/*", span_name = "…", attribute = {k = "v"} }]
    [noise]  exclude_services = []  exclude_routes = []  exclude_spans = []  environments = []  health_checks = true
    [[elements]]  id  name  kind  system  technology  description          # declared elements
    [[steps]]     scenario  from  to  label  technology  async             # declared steps
    [[sources]]   task  scenario  source  transport  cadence  data  source_of_truth  brittle  why
    [naming]      virtual_order = ["peer.service", …]                    # override the virtual-node naming order
    [serve]       grpc, http, idle, … (the sidecar's settings; see ``tracegen serve --help``)
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from tracegen.errors import ConfigError

__all__ = [
    "Config",
    "ServiceConfig",
    "ScenarioRule",
    "MatchRule",
    "NoiseConfig",
    "DeclaredElement",
    "DeclaredStep",
    "SourceAnnotation",
    "DEFAULT_VIRTUAL_ORDER",
    "find_config",
    "load_config",
    "read_config_table",
    "parse_config",
]

# The virtual-node naming order of the Collector's servicegraph connector and Tempo (DESIGN.md, "Calls").
DEFAULT_VIRTUAL_ORDER: tuple[str, ...] = (
    "peer.service",
    "service.peer.name",
    "db.namespace",
    "db.name",
    "server.address",
    "net.peer.name",
    "url.full",
    "http.url",
    "network.peer.address",
    "net.sock.peer.addr",
    "db.system",
    "db.system.name",
)

_TOP_KEYS = {"title", "description", "systems", "services", "scenarios", "noise", "elements", "steps", "sources",
             "naming", "serve"}
_SYSTEM_KEYS = {"name", "description"}
_SERVICE_KEYS = {"name", "system", "technology", "description", "kind", "merge_into", "rename", "hosts"}
_SCENARIO_KEYS = {"id", "title", "description", "actor", "mode_wording", "match"}
_MATCH_KEYS = {"service", "operation", "span_name", "route", "attribute"}
_NOISE_KEYS = {"exclude_services", "exclude_routes", "exclude_spans", "environments", "health_checks",
               "telemetry_traffic"}
_ELEMENT_KEYS = {"id", "name", "kind", "system", "technology", "description"}
_STEP_KEYS = {"scenario", "from", "to", "label", "technology", "async"}
_SOURCE_KEYS = {"task", "scenario", "source", "transport", "cadence", "data", "source_of_truth", "brittle", "why"}
_NAMING_KEYS = {"virtual_order"}
_KINDS = {"person", "container", "database", "queue", "external"}


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Per-service overrides; ``merge_into`` shows several services (web + worker) as one container."""

    name: str = ""
    system: str = ""
    technology: str = ""
    description: str = ""
    kind: str = ""
    merge_into: str = ""
    rename: str = ""
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MatchRule:
    """One entry signature pattern: every given field must match (globs, case-sensitive)."""

    service: str = ""
    operation: str = ""
    span_name: str = ""
    route: str = ""
    attribute: Mapping[str, str] = field(default_factory=dict)

    def matches(self, service: str, operation: str, span_name: str, route: str,
                attributes: Mapping[str, Any]) -> bool:
        """Whether an entry span with these values matches this rule."""
        if self.service and not fnmatch.fnmatchcase(service, self.service):
            return False
        if self.operation and not fnmatch.fnmatchcase(operation, self.operation):
            return False
        if self.span_name and not fnmatch.fnmatchcase(span_name, self.span_name):
            return False
        if self.route and not fnmatch.fnmatchcase(route, self.route):
            return False
        for key, pattern in self.attribute.items():
            value = attributes.get(key)
            if value is None or not fnmatch.fnmatchcase(str(value), pattern):
                return False
        return True


@dataclass(frozen=True, slots=True)
class ScenarioRule:
    """A declared scenario (journey): the entry signatures it joins, in the order its steps are numbered."""

    id: str
    title: str
    description: str = ""
    actor: str = ""
    mode_wording: str = ""
    match: tuple[MatchRule, ...] = ()


@dataclass(frozen=True, slots=True)
class NoiseConfig:
    """What to drop. Health checks and the telemetry pipeline's own traffic are dropped by default."""

    exclude_services: tuple[str, ...] = ()
    exclude_routes: tuple[str, ...] = ()
    exclude_spans: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    health_checks: bool = True
    telemetry_traffic: bool = True


@dataclass(frozen=True, slots=True)
class DeclaredElement:
    """An element no instrumentation can show (a mainframe, a partner's SFTP drop)."""

    id: str
    name: str
    kind: str
    system: str = ""
    technology: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class DeclaredStep:
    """A step no instrumentation can show, appended to a scenario."""

    scenario: str
    source: str
    target: str
    label: str
    technology: str = ""
    is_async: bool = False


@dataclass(frozen=True, slots=True)
class SourceAnnotation:
    """An ETL row annotation; matched to a scheduled/worker scenario by task name or scenario id."""

    task: str = ""
    scenario: str = ""
    source: str = ""
    transport: str = ""
    cadence: str = ""
    data: str = ""
    source_of_truth: str = ""
    brittle: bool | None = None
    why: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class Config:
    """The whole configuration; ``Config()`` is the empty default.

    Compared and hashed by identity (``eq=False``): a run holds one config, and per-service lookups derived from
    it are memoised on (service, config) in :mod:`tracegen.infer`.
    """

    title: str = ""
    description: str = ""
    systems: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    services: Mapping[str, ServiceConfig] = field(default_factory=dict)
    scenarios: tuple[ScenarioRule, ...] = ()
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    elements: tuple[DeclaredElement, ...] = ()
    steps: tuple[DeclaredStep, ...] = ()
    sources: tuple[SourceAnnotation, ...] = ()
    virtual_order: tuple[str, ...] = DEFAULT_VIRTUAL_ORDER
    path: str = ""
    digest: str = ""

    def service(self, name: str) -> ServiceConfig:
        """The config of a service by its ``service.name`` (empty when not configured)."""
        return self.services.get(name) or _EMPTY_SERVICE


_EMPTY_SERVICE = ServiceConfig()


def find_config(inputs: Sequence[str], explicit: str | None = None, cwd: Path | None = None) -> Path | None:
    """The config file to use, following the documented lookup order (None: run without config)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{explicit}: config file not found")
        return path
    for item in inputs:
        if item == "-":
            continue
        path = Path(item)
        folder = path if path.is_dir() else path.parent
        candidate = folder / "tracegen.toml"
        if candidate.is_file():
            return candidate
        break
    here = cwd or Path.cwd()
    if (here / "tracegen.toml").is_file():
        return here / "tracegen.toml"
    pyproject = here / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return None
        if "tracegen" in data.get("tool", {}):
            return pyproject
    return None


def read_config_table(path: Path) -> dict[str, Any]:
    """The raw tracegen table of a config file: the whole ``tracegen.toml``, or ``[tool.tracegen]`` of a
    ``pyproject.toml``. Unreadable files and invalid TOML are :class:`ConfigError` naming the file."""
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("tracegen", {})
    return dict(data)


def load_config(path: Path | None) -> Config:
    """Read and validate a config file (``None`` gives the empty default)."""
    if path is None:
        return Config()
    return parse_config(read_config_table(path), source=str(path))


def parse_config(data: Mapping[str, Any], *, source: str = "<config>") -> Config:
    """Validate a config mapping (as TOML gives it) into a :class:`Config`.

    A ``[serve]`` table holds the sidecar's settings; ``tracegen serve`` validates its keys, and it is left out of
    the config hash so that ``convert`` and ``serve`` on the same file record the same hash.
    """
    _check_keys(data, _TOP_KEYS, source, "")
    if not isinstance(data.get("serve", {}), Mapping):
        raise ConfigError(f"{source}: serve: expected a table")
    data = {key: value for key, value in data.items() if key != "serve"}
    systems: dict[str, dict[str, str]] = {}
    for system_id, body in _table(data, "systems", source).items():
        _check_keys(body, _SYSTEM_KEYS, source, f"systems.{system_id}")
        systems[system_id] = {
            "name": _str(body, "name", source, f"systems.{system_id}") or system_id,
            "description": _str(body, "description", source, f"systems.{system_id}"),
        }
    services: dict[str, ServiceConfig] = {}
    for name, body in _table(data, "services", source).items():
        where = f"services.{name}"
        _check_keys(body, _SERVICE_KEYS, source, where)
        kind = _str(body, "kind", source, where)
        if kind and kind not in _KINDS:
            raise ConfigError(f"{source}: {where}.kind: {kind!r} is not one of {sorted(_KINDS)}")
        system = _str(body, "system", source, where)
        if system and system not in systems:
            raise ConfigError(f"{source}: {where}.system: {system!r} is not a system declared under [systems]")
        services[name] = ServiceConfig(
            name=_str(body, "name", source, where),
            system=system,
            technology=_str(body, "technology", source, where),
            description=_str(body, "description", source, where),
            kind=kind,
            merge_into=_str(body, "merge_into", source, where),
            rename=_str(body, "rename", source, where),
            hosts=_str_list(body, "hosts", source, where),
        )
    scenarios = tuple(_scenario_rule(body, source, index) for index, body in
                      enumerate(_array(data, "scenarios", source)))
    seen: set[str] = set()
    for rule in scenarios:
        if rule.id in seen:
            raise ConfigError(f"{source}: scenarios: id {rule.id!r} is declared twice")
        seen.add(rule.id)
    noise_body = _table(data, "noise", source)
    _check_keys(noise_body, _NOISE_KEYS, source, "noise")
    noise = NoiseConfig(
        exclude_services=_str_list(noise_body, "exclude_services", source, "noise"),
        exclude_routes=_str_list(noise_body, "exclude_routes", source, "noise"),
        exclude_spans=_str_list(noise_body, "exclude_spans", source, "noise"),
        environments=_str_list(noise_body, "environments", source, "noise"),
        health_checks=_bool(noise_body, "health_checks", source, "noise", True),
        telemetry_traffic=_bool(noise_body, "telemetry_traffic", source, "noise", True),
    )
    elements = []
    for index, body in enumerate(_array(data, "elements", source)):
        where = f"elements[{index}]"
        _check_keys(body, _ELEMENT_KEYS, source, where)
        kind = _str(body, "kind", source, where) or "external"
        if kind not in _KINDS:
            raise ConfigError(f"{source}: {where}.kind: {kind!r} is not one of {sorted(_KINDS)}")
        element_id = _required(body, "id", source, where)
        elements.append(DeclaredElement(
            id=element_id, name=_str(body, "name", source, where) or element_id, kind=kind,
            system=_str(body, "system", source, where), technology=_str(body, "technology", source, where),
            description=_str(body, "description", source, where)))
    steps = []
    for index, body in enumerate(_array(data, "steps", source)):
        where = f"steps[{index}]"
        _check_keys(body, _STEP_KEYS, source, where)
        steps.append(DeclaredStep(
            scenario=_required(body, "scenario", source, where), source=_required(body, "from", source, where),
            target=_required(body, "to", source, where), label=_str(body, "label", source, where),
            technology=_str(body, "technology", source, where),
            is_async=_bool(body, "async", source, where, False)))
    sources = []
    for index, body in enumerate(_array(data, "sources", source)):
        where = f"sources[{index}]"
        _check_keys(body, _SOURCE_KEYS, source, where)
        brittle = body.get("brittle")
        if brittle is not None and not isinstance(brittle, bool):
            raise ConfigError(f"{source}: {where}.brittle: expected true or false")
        annotation = SourceAnnotation(
            task=_str(body, "task", source, where), scenario=_str(body, "scenario", source, where),
            source=_str(body, "source", source, where), transport=_str(body, "transport", source, where),
            cadence=_str(body, "cadence", source, where), data=_str(body, "data", source, where),
            source_of_truth=_str(body, "source_of_truth", source, where), brittle=brittle,
            why=_str(body, "why", source, where))
        if not (annotation.task or annotation.scenario or annotation.source):
            raise ConfigError(f"{source}: {where}: give at least one of task, scenario or source")
        sources.append(annotation)
    naming = _table(data, "naming", source)
    _check_keys(naming, _NAMING_KEYS, source, "naming")
    order = _str_list(naming, "virtual_order", source, "naming") or DEFAULT_VIRTUAL_ORDER
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Config(
        title=_str(data, "title", source, ""), description=_str(data, "description", source, ""),
        systems=systems, services=services, scenarios=scenarios, noise=noise, elements=tuple(elements),
        steps=tuple(steps), sources=tuple(sources), virtual_order=tuple(order), path=source,
        digest=digest if data else "")


def _scenario_rule(body: Any, source: str, index: int) -> ScenarioRule:
    where = f"scenarios[{index}]"
    if not isinstance(body, Mapping):
        raise ConfigError(f"{source}: {where}: expected a table")
    _check_keys(body, _SCENARIO_KEYS, source, where)
    matches = []
    raw_matches = body.get("match", [])
    if isinstance(raw_matches, Mapping):
        raw_matches = [raw_matches]
    if not isinstance(raw_matches, list):
        raise ConfigError(f"{source}: {where}.match: expected a list of tables")
    for match_index, match in enumerate(raw_matches):
        match_where = f"{where}.match[{match_index}]"
        if not isinstance(match, Mapping):
            raise ConfigError(f"{source}: {match_where}: expected a table")
        _check_keys(match, _MATCH_KEYS, source, match_where)
        attribute = match.get("attribute", {})
        if not isinstance(attribute, Mapping):
            raise ConfigError(f"{source}: {match_where}.attribute: expected a table of key = pattern")
        matches.append(MatchRule(
            service=_str(match, "service", source, match_where),
            operation=_str(match, "operation", source, match_where),
            span_name=_str(match, "span_name", source, match_where),
            route=_str(match, "route", source, match_where),
            attribute={str(k): str(v) for k, v in attribute.items()}))
    if not matches:
        raise ConfigError(f"{source}: {where}.match: a scenario rule needs at least one match table")
    title = _str(body, "title", source, where)
    scenario_id = _str(body, "id", source, where)
    if not title and not scenario_id:
        raise ConfigError(f"{source}: {where}: give an id or a title")
    from tracegen.naming import slugify  # local import: naming does not depend on config

    return ScenarioRule(
        id=scenario_id or slugify(title), title=title or scenario_id,
        description=_str(body, "description", source, where), actor=_str(body, "actor", source, where),
        mode_wording=_str(body, "mode_wording", source, where), match=tuple(matches))


def _check_keys(body: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    for key in body:
        if key not in allowed:
            place = f"{where}.{key}" if where else key
            raise ConfigError(f"{source}: unknown key {place!r} (allowed here: {', '.join(sorted(allowed))})")


def _table(data: Mapping[str, Any], key: str, source: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {key}: expected a table")
    for name, body in value.items():
        if key in ("systems", "services") and not isinstance(body, Mapping):
            raise ConfigError(f"{source}: {key}.{name}: expected a table")
    return value


def _array(data: Mapping[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{source}: {key}: expected an array of tables ([[{key}]])")
    for index, body in enumerate(value):
        if not isinstance(body, Mapping):
            raise ConfigError(f"{source}: {key}[{index}]: expected a table")
    return value


def _str(body: Mapping[str, Any], key: str, source: str, where: str) -> str:
    value = body.get(key, "")
    if not isinstance(value, str):
        place = f"{where}.{key}" if where else key
        raise ConfigError(f"{source}: {place}: expected a string, got {type(value).__name__}")
    return value


def _required(body: Mapping[str, Any], key: str, source: str, where: str) -> str:
    value = _str(body, key, source, where)
    if not value:
        raise ConfigError(f"{source}: {where}.{key}: required")
    return value


def _str_list(body: Mapping[str, Any], key: str, source: str, where: str) -> tuple[str, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{source}: {where}.{key}: expected a list of strings")
    return tuple(value)


def _bool(body: Mapping[str, Any], key: str, source: str, where: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: {where}.{key}: expected true or false")
    return value
