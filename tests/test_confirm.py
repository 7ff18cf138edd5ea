"""studies/confirm.py: selection and held-out seeds judged apart, side by side, never overlapping."""
import pytest

from conftest import load_study
from lth.claims import EQUIVALENT, judge


def test_seed_sets_and_the_side_by_side_table():
    confirm = load_study("confirm")
    assert confirm.seed_list("100-104") == (100, 101, 102, 103, 104) and confirm.seed_list("0,3") == (0, 3)
    zero = {s: 0.0 for s in range(5)}
    chosen = [judge("ticket > reinit", "", "level 10", {s: 0.02 + 0.001 * s for s in range(5)}, zero)]
    held = [judge("ticket > reinit", "", "level 10", {s: 0.001 * (s - 2) for s in range(5)}, zero),
            judge("ticket matches reinit", "", "level 10", {s: 0.001 * (s - 2) for s in range(5)}, zero, 0.01,
                  test=EQUIVALENT)]
    rows = confirm.side_by_side({"selection": chosen, "held out": held})
    assert rows[0] == {"claim": "ticket > reinit", "compared at": "level 10", "selection": "+2.20 [+2.00, +2.40] **holds**",
                       "held out": "+0.00 [-0.20, +0.20] undecided"}
    assert rows[1]["selection"] == "–" and rows[1]["held out"].endswith("**equivalent**")
    with pytest.raises(SystemExit):  # a held-out seed that chose the regime is refused
        confirm.main(["--selection", "0-4", "--held-out", "4-8", "--store", "unused"])
