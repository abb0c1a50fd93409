"""Names derived from one span at a time: slugs, templated operations, virtual-element names, technologies.

Rules (DESIGN.md, "Names and ids"):
- Every name comes from the values of one span, never from what other traces looked like, so a name never
  changes when more traces arrive or arrive in another order.
- Operations use ``http.route`` when present (Django regex routes become ``{name}`` form: ``(?P<course_id>…)`` →
  ``{course_id}``); otherwise each path segment is judged on its own value — numeric, UUID, hex id, e-mail,
  course/usage key, or a long mix of letters and digits becomes ``{id}`` — so ``/track/PX000123`` and
  ``/track/PX000456`` are one operation.
- A virtual element (a peer with no spans of its own) is named by the first useful value in the configured order
  (the servicegraph connector's order); values that say nothing alone (a Redis index ``0``, a bare IP when a host
  name is also present) give way to the next.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Sequence
from urllib.parse import urlsplit

from tracegen.spans import Span, SpanKind

__all__ = [
    "slugify",
    "template_route",
    "template_path",
    "http_method",
    "operation_of",
    "virtual_name",
    "db_system",
    "technology_of_db",
    "technology_of_scope",
    "classify_user_agent",
    "url_host",
    "is_messaging",
    "celery_task",
    "short_task",
]

_SLUG_STRIP = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=65536)
def slugify(text: str) -> str:
    """A readable id: lowercase ASCII letters, digits and single dashes (``"GET /a/{id}"`` → ``"get-a-id"``)."""
    slug = _SLUG_STRIP.sub("-", text.lower()).strip("-")
    return slug or "x"


# --- templating --------------------------------------------------------------------------------------------------

_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>")
_DJANGO_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
_SINATRA_PARAM = re.compile(r"(?<=/):(\w+)")


def _strip_group(route: str, start: int) -> int:
    """Index just past the regex group opened at ``start`` (balanced parentheses, escapes honoured)."""
    depth = 0
    index = start
    while index < len(route):
        char = route[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(route)


@functools.lru_cache(maxsize=16384)
def template_route(route: str) -> str:
    """A route in ``{name}`` form with a leading slash.

    Handles Django ``path()`` converters (``<str:backend>``), ``re_path()`` regexes (named groups become
    ``{name}``, anchors and optional slashes dropped), Sinatra/Express ``:param`` and OpenAPI ``{param}``.
    """
    text = route.strip()
    if "(?P<" in text or text.startswith("^") or text.endswith("$"):
        out: list[str] = []
        index = 0
        while index < len(text):
            match = _NAMED_GROUP.match(text, index)
            if match:
                out.append("{" + match.group(1) + "}")
                index = _strip_group(text, index)
                if index < len(text) and text[index] in "?*+":
                    index += 1
                continue
            char = text[index]
            if char == "(":
                end = _strip_group(text, index)
                if end < len(text) and text[end] == "?":  # optional unnamed group: (?:/(?P<suffix>.*))? → drop
                    index = end + 1
                    continue
                out.append("{}")
                index = end
                continue
            if char == "\\" and index + 1 < len(text):
                out.append(text[index + 1])
                index += 2
                continue
            if char in "^$":
                index += 1
                continue
            if char == "?" and out and out[-1] == "/":  # "/?" : optional trailing slash
                out.pop()
                index += 1
                continue
            if char in "?*+":
                index += 1
                continue
            out.append(char)
            index += 1
        text = "".join(out)
    text = _DJANGO_CONVERTER.sub(lambda m: "{" + m.group(1) + "}", text)
    text = _SINATRA_PARAM.sub(lambda m: "{" + m.group(1) + "}", text)
    if not text.startswith("/"):
        text = "/" + text
    if len(text) > 1:
        text = text.rstrip("/") or "/"
    return text


_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^[0-9a-fA-F]{12,}$")
_NUMBER = re.compile(r"^[+-]?\d+([.,]\d+)?$")
_EMAIL = re.compile(r"^[^@/\s]+@[^@/\s]+\.[^@/\s]+$")
_OPAQUE_KEY = re.compile(r"^(course|block|program|library|lib|i4x|asset)(-v\d+)?:", re.IGNORECASE)
_HAS_DIGIT = re.compile(r"\d")
_HAS_ALPHA = re.compile(r"[A-Za-z]")


def _segment_is_id(segment: str) -> bool:
    if not segment:
        return False
    if _NUMBER.match(segment) or _UUID.match(segment) or _EMAIL.match(segment) or _OPAQUE_KEY.match(segment):
        return True
    if _HEX.match(segment) and _HAS_DIGIT.search(segment):
        return True
    # A long mix of letters and digits (PX000123, a1b2c3d4e5): an identifier, not a word.
    if len(segment) >= 6 and _HAS_DIGIT.search(segment) and _HAS_ALPHA.search(segment):
        digits = sum(char.isdigit() for char in segment)
        return digits >= 3
    if len(segment) >= 24 and re.match(r"^[A-Za-z0-9_\-=]+$", segment):  # tokens, base64 ids
        return True
    return False


def template_path(path: str) -> str:
    """A URL path with id-like segments replaced by ``{id}``, judged segment by segment on its own value."""
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    segments = path.split("/")
    out = ["{id}" if _segment_is_id(segment) else segment for segment in segments]
    templated = "/".join(out)
    if not templated.startswith("/"):
        templated = "/" + templated
    if len(templated) > 1:
        templated = templated.rstrip("/") or "/"
    return templated


def http_method(span: Span) -> str:
    """The HTTP method (old or new conventions), upper-cased; ``""`` when not HTTP."""
    value = span.attr("http.request.method", "http.method")
    return str(value).upper() if value else ""


def _http_path(span: Span) -> str:
    path = span.attr("url.path")
    if path:
        return str(path)
    target = span.attr("http.target", "url.target")
    if target:
        return str(target)
    full = span.attr("url.full", "http.url")
    if full:
        return urlsplit(str(full)).path or "/"
    return ""


def operation_of(span: Span) -> str:
    """The templated operation a span performs, as used in entry signatures and step labels.

    HTTP: ``METHOD /route``; RPC: ``service/method``; messaging: the Celery task or destination; otherwise the
    span name with id-like segments templated.
    """
    method = http_method(span)
    route = span.attr("http.route")
    if method:
        if route:
            return f"{method} {template_route(str(route))}"
        path = _http_path(span)
        if path:
            return f"{method} {template_path(path)}"
    rpc_service = span.attr("rpc.service")
    rpc_method = span.attr("rpc.method")
    if rpc_service and rpc_method and span.attr("rpc.system") != "aws-api":
        return f"{rpc_service}/{rpc_method}"
    task = celery_task(span)
    if task:
        return task
    if span.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER):
        destination = span.attr("messaging.destination.name", "messaging.destination")
        if destination:
            return f"{_messaging_verb(span)} {destination}"
    name = span.name
    if route and method == "":
        return template_route(str(route))
    if name.startswith("/") or " /" in name:
        head, _, tail = name.partition("/")
        return head + template_path("/" + tail)
    return name


def _messaging_verb(span: Span) -> str:
    operation = span.attr("messaging.operation.type", "messaging.operation")
    if operation:
        return str(operation)
    return "publish" if span.kind == SpanKind.PRODUCER else "process"


def celery_task(span: Span) -> str:
    """The Celery task name of a Celery span (``""`` otherwise); from the attribute or the span name."""
    task = span.attr("celery.task_name")
    if task:
        return str(task)
    if span.attr("celery.action"):
        _, _, rest = span.name.partition("/")
        return rest
    return ""


def short_task(task: str) -> str:
    """The last dotted component of a task name (``a.b.tasks.sync`` → ``sync``) for diagram labels."""
    return task.rsplit(".", 1)[-1] if task else task


def is_messaging(span: Span) -> bool:
    """Whether a span publishes or receives a message (by kind, Celery attributes or messaging semconv)."""
    if span.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER):
        return True
    attrs = span.attributes
    if "celery.action" in attrs:
        return bool(attrs["celery.action"])
    if "messaging.system" not in attrs:
        return False  # the common case (HTTP, database): one membership test
    return bool(span.attr("messaging.operation.type", "messaging.operation")) and bool(attrs["messaging.system"])


# --- virtual elements -------------------------------------------------------------------------------------------

def url_host(url: str) -> str:
    """The host of a URL (``""`` when it has none)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


_MAYBE_IP = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|\[?[0-9a-fA-F]*:[0-9a-fA-F:.]*\]?)$")


def _is_ip(value: str) -> bool:
    if not _MAYBE_IP.match(value):
        return False  # a host name: skip the (slow) ipaddress parse
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def _is_meaningless(key: str, value: str) -> bool:
    if not value:
        return True
    if key in ("db.namespace", "db.name") and value.isdigit():  # a Redis database index
        return True
    return False


def virtual_name(span: Span, order: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
    """Name a peer that has no spans of its own.

    Returns ``(name, attribute_that_named_it, every_naming_value_seen)``; the name is ``"unknown"`` when
    nothing names the peer. Database names (``db.namespace``/``db.name``) apply only to database calls.
    """
    attrs = span.attributes
    values = tuple(attrs.get(key) for key in order)
    port = attrs.get("network.peer.port", attrs.get("net.sock.peer.port"))
    return _virtual_name(values, port, bool(db_system(span)), tuple(order))


@functools.lru_cache(maxsize=16384)
def _virtual_name(values: tuple, port: object, is_db: bool,
                  order: tuple[str, ...]) -> tuple[str, str, tuple[str, ...]]:
    """:func:`virtual_name` on the naming values alone (memoised: a handful of peers are named over and over)."""
    candidates: list[tuple[str, str]] = []
    for key, value in zip(order, values):
        if key in ("db.namespace", "db.name") and not is_db:
            continue
        if value is None or value == "":
            continue
        text = str(value)
        if key in ("url.full", "http.url"):
            text = url_host(text)
        elif key in ("network.peer.address", "net.sock.peer.addr"):
            if port not in (None, ""):
                text = f"{text}:{port}"
        candidates.append((key, text))
    aliases = tuple(sorted({text for _, text in candidates if text}))
    has_hostname = any(text and not _is_ip(text.rsplit(":", 1)[0]) for key, text in candidates
                       if key not in ("db.system", "db.system.name", "db.namespace", "db.name"))
    for key, text in candidates:
        if _is_meaningless(key, text):
            continue
        if has_hostname and _is_ip(text.rsplit(":", 1)[0] if text.count(":") == 1 else text):
            continue
        return text, key, aliases
    return "unknown", "", aliases


# --- technologies -------------------------------------------------------------------------------------------------

_DB_PRETTY = {
    "mysql": "MySQL", "mariadb": "MariaDB", "postgresql": "PostgreSQL", "mongodb": "MongoDB", "redis": "Redis",
    "elasticsearch": "Elasticsearch", "opensearch": "OpenSearch", "mssql": "SQL Server",
    "microsoft.sql_server": "SQL Server", "sqlite": "SQLite", "oracle": "Oracle", "cassandra": "Cassandra",
    "memcached": "Memcached", "dynamodb": "DynamoDB", "clickhouse": "ClickHouse", "qdrant": "Qdrant",
    "couchbase": "Couchbase", "cosmosdb": "Cosmos DB", "neo4j": "Neo4j", "h2": "H2", "db2": "Db2",
}


def db_system(span: Span) -> str:
    """The database system of a span (``db.system``, ``db.system.name``, Jaeger-style ``db.type``), or ``""``."""
    value = span.attr("db.system", "db.system.name", "db.type")
    if value:
        return str(value)
    if span.attr("rpc.system") == "aws-api" and str(span.attr("rpc.service") or "") in ("S3", "DynamoDB"):
        return str(span.attr("rpc.service")).lower()
    if span.attributes.get("sql") is not None:
        return "sql"
    return ""


def technology_of_db(system: str) -> str:
    """A display technology for a database system value (``postgresql`` → ``PostgreSQL``, ``s3`` → ``S3``)."""
    if system == "s3":
        return "S3"
    if system == "sql":
        return "SQL"
    return _DB_PRETTY.get(system.lower(), system)


_SCOPE_TECH = (
    ("django", "Django"), ("flask", "Flask"), ("fastapi", "FastAPI"), ("starlette", "Starlette"),
    ("falcon", "Falcon"), ("pyramid", "Pyramid"), ("tornado", "Tornado"), ("aiohttp-server", "aiohttp"),
    ("sinatra", "Sinatra"), ("rails", "Rails"), ("rack", "Rack"), ("express", "Express"), ("koa", "Koa"),
    ("nestjs", "NestJS"), ("spring", "Spring"), ("servlet", "Java Servlet"), ("aspnetcore", "ASP.NET Core"),
    ("net/http", "Go net/http"), ("gin", "Gin"), ("grpc", "gRPC"), ("celery", "Celery"), ("kafka", "Kafka"),
    ("wsgi", "WSGI"), ("asgi", "ASGI"),
)
_LANG_TECH = {"python": "Python", "go": "Go", "java": "Java", "nodejs": "Node.js", "dotnet": ".NET",
              "ruby": "Ruby", "php": "PHP", "rust": "Rust", "cpp": "C++", "erlang": "Erlang", "swift": "Swift",
              "webjs": "JavaScript"}


def technology_of_scope(scope: str, language: str = "") -> tuple[int, str]:
    """``(priority, technology)`` from an instrumentation scope name; lower priority wins when several apply."""
    lowered = scope.lower()
    for priority, (needle, tech) in enumerate(_SCOPE_TECH):
        if needle in lowered:
            return priority, tech
    if language:
        return 1000, _LANG_TECH.get(language.lower(), language)
    return 2000, ""


# --- callers ------------------------------------------------------------------------------------------------------

_BROWSER = re.compile(r"Mozilla/|Chrome/|Safari/|Firefox/|Edg/|Opera/|OPR/|Trident/", re.IGNORECASE)
_BOT = re.compile(r"bot\b|crawler|spider|curl/|wget/|python-|okhttp|Go-http-client|Java/|axios|node-fetch",
                  re.IGNORECASE)


_TRAILING_VERSION = re.compile(r"[-_ .]?v?\d+(\.\d+)+[a-z0-9.-]*$", re.IGNORECASE)


def classify_user_agent(user_agent: str) -> tuple[str, str]:
    """``("person", "")`` for a browser, ``("program", product)`` for a client library, ``("", "")`` if unknown."""
    if not user_agent:
        return "", ""
    if _BROWSER.search(user_agent) and not _BOT.search(user_agent):
        return "person", ""
    product = user_agent.split()[0].split("/")[0].strip("() ;") or user_agent[:40]
    # "social-auth-4.5.4" and "social-auth-4.6.0" are one caller: a version must not rename the element.
    product = _TRAILING_VERSION.sub("", product) or product
    return "program", product
