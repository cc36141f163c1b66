"""The service core without HTTP: verification scores a subject exactly as the gallery's search does."""

from __future__ import annotations

import numpy as np
import pytest

from partialface.gallery import STRATEGIES, open_gallery
from partialface.server.service import aggregate_scores, cosine


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_verify_aggregation_matches_the_gallery_search(strategy):
    rng = np.random.default_rng(0)
    templates = rng.standard_normal((4, 16)).astype(np.float32)
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)
    query = (templates[0] + 0.5 * rng.standard_normal(16)).astype(np.float32)
    query /= np.linalg.norm(query)
    with open_gallery("sqlite:///:memory:") as gallery:
        gallery.ensure_schema(16)
        gallery.enroll_many({"alice": templates})
        searched = gallery.search(query, 1, strategy)[0].score
    assert aggregate_scores(templates, query.astype(np.float64), strategy) == pytest.approx(searched, abs=1e-5)


def test_cosines_stay_in_range():
    assert cosine(1.0000001) == 1.0 and cosine(-1.2) == -1.0 and cosine(0.25) == 0.25
