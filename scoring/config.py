"""Where the data store and the model live: `SCORING_WORKDIR` or the repository itself."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Workdir:
    root: Path

    @classmethod
    def resolve(cls, workdir: str | os.PathLike | None = None) -> "Workdir":
        chosen = workdir or os.environ.get("SCORING_WORKDIR") or REPO_ROOT
        return cls(Path(chosen).expanduser().resolve())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def store_path(self) -> Path:
        return self.data / "clients.duckdb"

    @property
    def features_path(self) -> Path:
        return self.data / "features.npy"

    @property
    def booster_path(self) -> Path:
        return self.model / "model.json"

    @property
    def card_path(self) -> Path:
        return self.model / "model_card.json"

    @property
    def policy_path(self) -> Path:
        """The threshold policy's history (`scoring.policy`): one line per adopted threshold, appended."""
        return self.model / "policy.jsonl"

    @property
    def importance_path(self) -> Path:
        return self.model / "global_importance.json"

    def is_built(self) -> bool:
        return all(p.exists() for p in (self.store_path, self.features_path, self.booster_path, self.card_path))

    def require_built(self) -> "Workdir":
        """This work directory, or `ArtefactsMissingError` saying how to build it."""
        if not self.is_built():
            from .errors import ArtefactsMissingError

            raise ArtefactsMissingError(f"no model or client files in {self.root}: run `make model` "
                                        f"or `python -m scoring build --workdir {self.root}`")
        return self
