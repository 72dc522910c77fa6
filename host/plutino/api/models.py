"""Request and response bodies, for validation and for the OpenAPI spec.

The shapes are eKuiper's. A rule body keeps unknown fields and passes them on: the engine
refuses them in its own words, with a "did you mean". The other request bodies refuse unknown
fields here (400 "unknown field 'x' in the request body"), so a misspelt field is never
silently ignored. The engine and the plugin manager check the contents.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StreamBody(BaseModel):
    """``POST /streams`` and ``PUT /streams/{id}``."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(description="A stream statement, e.g. CREATE STREAM demo () WITH (TYPE=\"random\")",
                     examples=['CREATE STREAM demo () WITH (TYPE="random", FORMAT="json")'])


class RuleBody(BaseModel):
    """``POST /rules`` and ``PUT /rules/{id}``: eKuiper's rule."""

    model_config = ConfigDict(extra="allow")

    id: str | None = Field(default=None, description="Letters, digits, '-' and '_'; PUT takes it from the path")
    sql: str | None = Field(default=None, description="The rule's SELECT", examples=["SELECT count FROM demo"])
    actions: list[dict[str, Any]] | None = Field(
        default=None, description='Sinks: [{"<sink name>": {properties}}], e.g. [{"log": {}}]')
    options: dict[str, Any] | None = Field(
        default=None, description="isEventTime, lateTolerance, bufferLength, triggered")

    def to_rule(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class PluginBody(BaseModel):
    """``POST /plugins/{kind}s`` and ``PUT /plugins/{kind}s/{name}``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Letters, digits, '-' and '_'; PUT takes it from the path",
                             examples=["echo"])
    file: str | None = Field(default=None, description="The package zip: file:///abs/path.zip or http(s)://",
                             examples=["file:///tmp/echo.zip"])
    shellParas: list[str] = Field(default_factory=list,
                                  description="Arguments for the package's install.sh (needs allow_scripts)")
    functions: list[str] | None = Field(
        default=None, description="Function plugins: the functions it offers (optional: read from the plugin)")
    sha256: str | None = Field(default=None, description="The sha256 the zip must have (Plutino extension)")


class TrustedKeyBody(BaseModel):
    """``POST /plugins/trusted_keys`` (Plutino extension): trust a package signing key."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Letters, digits, '-' and '_'", examples=["alice"])
    key: str = Field(description="The Ed25519 public key in PEM, as `plutino plugin keygen` writes NAME.pub",
                     examples=["-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA...\n-----END PUBLIC KEY-----\n"])


class TrustedKeyInfo(BaseModel):
    """A trusted key: its name, its id (what a signature names) and the key."""

    name: str
    key_id: str = Field(description="The first 16 hex digits of the sha256 of the raw public key")
    key: str


class FunctionList(BaseModel):
    """``POST /plugins/functions/{name}/register``."""

    model_config = ConfigDict(extra="forbid")

    functions: list[str]


class QueryBody(BaseModel):
    """``POST /query`` (Plutino extension): run a SELECT for a while and return its rows."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(description="A SELECT over an existing stream", examples=["SELECT count FROM demo"])
    limit: int = Field(default=10, ge=1, le=100_000, description="Stop after this many rows")
    timeout: float = Field(default=5.0, gt=0, le=300, description="Stop after this many seconds")


class QueryResult(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    elapsed_s: float
    complete: bool = Field(description="True when the limit was reached or the stream ended")
    errors: list[str] = Field(default_factory=list, description="What went wrong while it ran: why it stopped, "
                              "each operator's last error and count, a warning about the stream's columns")


class RuleListItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    status: str = Field(description='eKuiper\'s: "running" or "stopped" ("starting"/"stopping" meanwhile)')
    message: str = Field(description='why it stopped ("canceled manually", an error); "" while running')


class UdfInfo(BaseModel):
    name: str
    plugin: str


class ServerInfo(BaseModel):
    version: str
    os: str
    arch: str
    upTimeSeconds: int
    dataDir: str


__all__ = ["FunctionList", "PluginBody", "QueryBody", "QueryResult", "RuleBody", "RuleListItem", "ServerInfo",
           "StreamBody", "UdfInfo"]
