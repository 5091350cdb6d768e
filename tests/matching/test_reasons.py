"""Every reason code is one rule: its condition decides the rows that carry it, and its label
and action text are what lists and the portal show."""

import numpy as np
import pytest

from popsync import labels, reasons
from popsync.contracts import REASONS


def test_each_reason_code_is_one_rule_with_labels_and_an_action():
    assert REASONS == tuple(rule.code for rule in reasons.RULES)
    assert len(set(REASONS)) == len(REASONS)
    assert list(labels.REASON_LABELS) == list(REASONS)
    for rule in reasons.RULES:
        vietnamese, english = rule.label
        assert vietnamese and english and vietnamese != english
        assert all(rule.action) and rule.action[0] != rule.action[1]
        assert labels.REASON_LABELS[rule.code] == rule.label
    # only the one-person-one-registration rule is applied over whole results
    assert [r.code for r in reasons.RULES if r.condition is None] == ["duplicate_registration"]


def _evidence(**true_fields) -> reasons.Evidence:
    """Evidence on one row: every field False but those given."""
    names = reasons.Evidence.__dataclass_fields__
    return reasons.Evidence(**{name: np.array([name in true_fields]) for name in names})


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"shown", "id_equal", "name_equal", "birth_date_equal", "gender_equal"}, set()),
        ({"shown", "id_missing", "birth_date_equal", "gender_equal"},
         {"missing_id", "name_mismatch"}),
        ({"shown", "id_equal", "name_equal", "gender_equal", "birth_date_fits_partially"},
         {"birth_date_partial"}),
        ({"shown", "id_equal", "name_equal", "gender_equal"}, {"birth_date_mismatch"}),
        ({"shown", "review", "ambiguous", "id_missing", "name_equal", "birth_date_equal",
          "gender_equal"}, {"missing_id", "ambiguous"}),
        ({"id_missing", "name_empty", "gender_unknown"},
         {"missing_id", "name_mismatch", "gender_mismatch", "no_candidate"}),
        ({"id_invalid", "province_unknown", "birth_date_unparsable"},
         {"id_invalid", "birth_date_mismatch", "no_candidate", "province_unknown"}),
        ({"shown", "id_old", "name_equal", "birth_date_equal", "gender_equal", "deceased"},
         {"old_id_number", "deceased"}),
        # reviewers' decisions: kept unmatched says so instead of "no candidate"
        ({"id_missing", "decided_absent"}, {"missing_id", "not_in_population"}),
        ({"shown", "review", "id_missing", "name_equal", "birth_date_equal", "gender_equal",
          "deceased", "confirmed_deceased"},
         {"missing_id", "deceased", "confirmed_person_deceased"}),
        ({"shown", "review", "id_missing", "name_equal", "birth_date_equal", "gender_equal",
          "confirmed_claimed"}, {"missing_id", "confirmed_person_claimed"}),
        ({"shown", "review", "id_missing", "name_equal", "birth_date_equal", "gender_equal",
          "decision_outdated"}, {"missing_id", "decision_outdated"}),
    ],
)
def test_conditions_give_the_reasons_of_a_row(facts, expected):
    flags = reasons.flags(_evidence(**dict.fromkeys(facts, True)))
    assert {code for code, rows in flags.items() if rows[0]} == expected
