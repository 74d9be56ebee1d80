"""Connecting to Elasticsearch: URL and credentials from options, environment or a JSON file.

Precedence: an explicit argument (`--es-url`), then the environment, then the file named by
`DSSM_ES_CONFIG` (JSON with any of `url`, `api_key`, `user`, `password`, `ca_certs`), then defaults.

| setting  | environment          | default                  |
| -------- | -------------------- | ------------------------ |
| url      | `DSSM_ES_URL`        | `http://127.0.0.1:9200`  |
| api_key  | `DSSM_ES_API_KEY`    | none (base64 `id:key`, as ES returns it in `encoded`) |
| user     | `DSSM_ES_USER`       | none (basic auth with `password`) |
| password | `DSSM_ES_PASSWORD`   | none                     |
| ca_certs | `DSSM_ES_CA_CERTS`   | none (system CAs)        |
| timeout  | `DSSM_ES_TIMEOUT`    | 10 seconds (connect and each request) |

Secrets never reach a message or a repr: errors name the variable to fix, not its value.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from elastic_transport import TlsError
from elasticsearch import (ApiError, AuthenticationException, AuthorizationException, ConnectionError,
                           ConnectionTimeout, Elasticsearch, TransportError)

DEFAULT_URL = "http://127.0.0.1:9200"
DEFAULT_TIMEOUT = 10.0
ENV = {"url": "DSSM_ES_URL", "api_key": "DSSM_ES_API_KEY", "user": "DSSM_ES_USER",
       "password": "DSSM_ES_PASSWORD", "ca_certs": "DSSM_ES_CA_CERTS", "timeout": "DSSM_ES_TIMEOUT"}
CONFIG_FILE_ENV = "DSSM_ES_CONFIG"


class EsError(Exception):
    """Elasticsearch is unreachable, refuses us, or answers unexpectedly: a one-line message (exit 1)."""


@dataclass(frozen=True)
class EsConfig:
    url: str = DEFAULT_URL
    api_key: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def safe_url(self) -> str:
        """The URL without any `user:password@` part, for messages."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def read_config_file(path: str) -> dict:
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{CONFIG_FILE_ENV}={path}: cannot read it as JSON ({type(error).__name__}); "
                         f"fix the file or unset {CONFIG_FILE_ENV}") from None
    if not isinstance(values, dict) or set(values) - set(ENV):
        raise ValueError(f"{path}: expected a JSON object with keys from {sorted(ENV)}")
    return values


def load_config(url: str | None = None, timeout: float | None = None) -> EsConfig:
    """Merge arguments, environment and the optional JSON file into an `EsConfig`."""
    values: dict = {}
    if os.environ.get(CONFIG_FILE_ENV):
        values.update(read_config_file(os.environ[CONFIG_FILE_ENV]))
    values.update({key: os.environ[name] for key, name in ENV.items() if os.environ.get(name)})
    values.update({key: value for key, value in (("url", url), ("timeout", timeout)) if value is not None})
    try:
        values["timeout"] = float(values.get("timeout", DEFAULT_TIMEOUT))
    except ValueError:
        raise ValueError(f"{ENV['timeout']} must be a number of seconds") from None
    if values["timeout"] <= 0:
        raise ValueError(f"the Elasticsearch timeout must be > 0 seconds, got {values['timeout']}")
    if bool(values.get("user")) != bool(values.get("password")):
        raise ValueError(f"basic auth needs both {ENV['user']} and {ENV['password']}")
    if urlsplit(values.get("url", DEFAULT_URL)).scheme not in ("http", "https"):
        raise ValueError(f"Elasticsearch URL must start with http:// or https:// (--es-url or {ENV['url']})")
    return EsConfig(**values)


def client_for(config: EsConfig) -> Elasticsearch:
    """An `Elasticsearch` client; nothing is sent until the first request (see `connect`)."""
    options: dict = {"request_timeout": config.timeout, "retry_on_timeout": False, "max_retries": 2}
    if config.api_key:
        options["api_key"] = config.api_key
    elif config.user:
        options["basic_auth"] = (config.user, config.password)
    if config.ca_certs:
        if not Path(config.ca_certs).is_file():
            raise ValueError(f"{ENV['ca_certs']}={config.ca_certs}: no such file; give the CA certificate (PEM)")
        options["ca_certs"] = config.ca_certs
    return Elasticsearch(config.url, **options)


def describe_error(error: Exception, config: EsConfig) -> str:
    """One line for an error talking to `config.url`, naming the fix; never contains a secret."""
    where = config.safe_url
    if isinstance(error, AuthenticationException):
        return (f"Elasticsearch at {where} refused our credentials (401); check {ENV['api_key']} or "
                f"{ENV['user']}/{ENV['password']}")
    if isinstance(error, AuthorizationException):
        return f"Elasticsearch at {where}: these credentials lack a privilege (403): {error.message}"
    if isinstance(error, TlsError):
        return (f"TLS with Elasticsearch at {where} failed ({error.message}); check the URL scheme and "
                f"{ENV['ca_certs']} (the CA certificate, PEM)")
    if isinstance(error, ConnectionTimeout):
        return f"Elasticsearch at {where} did not answer within {config.timeout:g} s; is it up? (make es-up)"
    if isinstance(error, ConnectionError):
        return f"cannot connect to Elasticsearch at {where}; is it running? (make es-up, or set --es-url/{ENV['url']})"
    if isinstance(error, ApiError):
        return f"Elasticsearch at {where} answered {error.meta.status}: {error.message} {error_reason(error)}".rstrip()
    if isinstance(error, TransportError):
        return f"Elasticsearch at {where}: {type(error).__name__}: {error.message}"
    return f"Elasticsearch at {where}: {type(error).__name__}: {error}"


def error_reason(error: ApiError) -> str:
    """The `error.reason` of an ES error body, if any."""
    body = error.body if isinstance(error.body, dict) else {}
    reason = body.get("error", {})
    return str(reason.get("reason", "")) if isinstance(reason, dict) else str(reason)


def connect(config: EsConfig) -> Elasticsearch:
    """A client checked against the server within `config.timeout`: raises `EsError` (one line) if not."""
    client = client_for(config)
    try:
        client.options(request_timeout=config.timeout, max_retries=0).cluster.health()
    except AuthorizationException:
        pass  # the credentials work; they just may not read cluster health
    except (TransportError, ApiError) as error:
        raise EsError(describe_error(error, config)) from None
    return client
