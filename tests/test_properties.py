"""Property tests: the step parser and the mask invariants hold for any input hypothesis finds."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lth.errors import StepError
from lth.masks import Mask, magnitude_prune, random_prune
from lth.steps import Step


def half_up(x: float) -> int:
    """round(x) with halves up, written here rather than taken from the code under test."""
    return int(x + 0.5)


@given(st.integers(0, 10**9), st.sampled_from(["it", "ep"]), st.integers(1, 10**4))
def test_any_well_formed_step_parses_and_resolves(amount, unit, per_epoch):
    step = Step.parse(f"{amount}{unit}")
    assert step.iterations(per_epoch) == (amount if unit == "it" else amount * per_epoch)
    assert Step.parse(str(step)) == step


@given(st.text(max_size=12))
def test_any_other_text_is_a_step_error_not_a_crash(text):
    stripped = text.strip()
    well_formed = stripped[-2:] in ("it", "ep") and stripped[:-2].strip().isdigit() and stripped[:-2].strip().isascii()
    if well_formed:
        Step.parse(text)
    else:
        with pytest.raises(StepError):
            Step.parse(text)


shapes = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(shapes, st.floats(0.01, 0.99), st.sampled_from(["layerwise", "global"]), st.integers(0, 2**31),
       st.integers(1, 4), st.booleans())
def test_pruning_is_exact_nested_and_keeps_the_largest(shape_list, fraction, strategy, seed, levels, ties):
    generator = torch.Generator().manual_seed(seed)
    names = [f"layer{i}.weight" for i in range(len(shape_list))]
    mask = Mask({n: torch.ones(s, dtype=torch.bool) for n, s in zip(names, shape_list)})
    fractions = {n: fraction for n in names}
    for _ in range(levels):
        weights = {n: torch.randn(s, generator=generator) for n, s in zip(names, shape_list)}
        if ties:  # coarse values: many equal magnitudes
            weights = {n: w.round() for n, w in weights.items()}
        before = mask
        mask = magnitude_prune(mask, weights, fractions, strategy, fraction)
        assert all(not (mask[n] & ~before[n]).any() for n in names)  # nested across levels
        if strategy == "layerwise":
            for n in names:
                left = int(before[n].sum())
                assert int(mask[n].sum()) == left - half_up(fraction * left)
        else:
            assert mask.remaining() == before.remaining() - half_up(fraction * before.remaining())
        pool = names if strategy == "global" else names[:1]
        kept = torch.cat([weights[n].abs()[mask[n]] for n in pool])
        dropped = torch.cat([weights[n].abs()[before[n] & ~mask[n]] for n in pool])
        if len(kept) and len(dropped):
            assert kept.min() >= dropped.max()
    shuffled = random_prune(mask, generator)
    assert shuffled.per_layer() == mask.per_layer()
