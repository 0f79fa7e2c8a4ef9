"""Similar applicants: labelled only, never the client, in a space without protected attributes."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.contracts import ClientQuery
from scoring.reasons import protected_features


def test_peers_are_the_nearest_labelled_clients_and_never_the_client(service):
    labelled = set(int(r["client_id"]) for r in service.search(ClientQuery(split="train", limit=500)).items)
    for split in ("train", "new"):
        for row in service.search(ClientQuery(split=split, limit=20)).items:
            cid = int(row["client_id"])
            peers = service.peers(cid, 7)
            assert peers.k == len(peers.peers) == 7 and cid not in {p.client_id for p in peers.peers}
            distances = [p.distance for p in peers.peers]
            assert distances == sorted(distances)
            assert peers.default_rate == pytest.approx(np.mean([p.defaulted for p in peers.peers]))
            assert peers.default_probability == pytest.approx(row["default_probability"])
            for p in peers.peers:
                assert service.client(p.client_id).split == "train"
                assert p.defaulted == (service.client(p.client_id).known_outcome == 1)
    assert labelled


def test_the_space_is_the_top_features_without_protected_ones(service):
    peers = service.peers(int(service.ids[0]), 3)
    protected = protected_features(service.scorer.spec) | {"DAYS_BIRTH", "CODE_GENDER"}
    assert peers.features and not set(peers.features) & protected
    ranked = [f.feature for f in service.global_importance(50)]
    assert list(peers.features) == [f for f in ranked if f in peers.features][:len(peers.features)]
    assert peers.features[0] == next(f for f in ranked if f not in protected and
                                     service.scorer.spec.features[service.scorer.spec.index(f)].kind != "categorical")


def test_a_labelled_client_s_first_peer_is_someone_else_even_with_a_twin(service):
    cid = int(service.search(ClientQuery(split="train", limit=1)).items[0]["client_id"])
    peers = service.peers(cid, 1)
    assert peers.peers[0].client_id != cid


def test_k_is_bounded(service):
    with pytest.raises(ValueError, match="k must be"):
        service.peers(int(service.ids[0]), 0)
