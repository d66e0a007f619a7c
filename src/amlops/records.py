"""The gate's verdict (verdict.json) and the registration record (registration.json) as typed models.

The evaluate and register steps write these files; the register step, the `train` command, the loop, the demo
and the Azure ML job readers read them — by attribute, through these models, never by string keys. The JSON on
disk keeps its shape: unknown keys are kept (`extra="allow"`), so a reader of a newer file does not fail.

Only pydantic is imported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

VERDICT_FILE = "verdict.json"
REGISTRATION_FILE = "registration.json"


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")

    @classmethod
    def read(cls, path: str | Path) -> Any:
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def __getitem__(self, key: str) -> Any:
        """Read-only dict-style access, as the JSON reads (tests pin the file's shape this way); code reads
        attributes."""
        if key in type(self).model_fields or (self.model_extra and key in self.model_extra):
            return getattr(self, key)
        raise KeyError(key)


class ModelMetrics(_Record):
    metrics: dict[str, float | None] | None = None


class ChampionBlock(ModelMetrics):
    """The champion the challenger was compared with on the same holdout (None: there was none)."""

    version: str
    uri: str | None = None


class Interval(_Record):
    """The bootstrap interval of the relative improvement (None ends: not computable)."""

    low: float | None = None
    high: float | None = None
    confidence: float | None = None
    method: str | None = None
    samples: int | None = None


class Holdout(_Record):
    start: str
    end: str
    days: int
    rows: int


class GateVerdict(_Record):
    """What the gate decided and on which numbers."""

    passed: bool = Field(strict=True)  # "yes"/"1" must not pass a gate: only a JSON boolean does
    summary: str
    reasons: list[str] = []
    notes: list[str] = []
    metric: str
    challenger: ModelMetrics
    champion: ChampionBlock | None = None
    improvement: float | None = None
    interval: Interval | None = None
    holdout: Holdout | None = None
    data_digest: str | None = None
    evaluated_at: str | None = None

    @property
    def champion_version(self) -> str | None:
        """The champion the verdict beat (compare-and-set promotion checks it is still the champion)."""
        return self.champion.version if self.champion else None


class Promotion(_Record):
    status: str
    gate_champion: str | None = None
    champion_at_promotion: str | None = None
    note: str = ""


class Registration(_Record):
    """The version the register step created and the roles after it."""

    model_name: str
    version: str
    model_uri: str | None = None
    created: bool = True  # False: this pipeline run had registered it already (a retried step)
    gate_passed: bool | None = None
    auto_promote: bool = True
    promoted: bool = False
    promotion: Promotion | None = None
    is_champion: bool = False
    champion: str | None = None
    roles: dict[str, str] = {}
    pipeline_run_id: str | None = None
    git_commit: str | None = None
    data_digest: str | None = None
    summary: str = ""

    @property
    def role(self) -> str:
        return "champion" if self.is_champion else "challenger"
