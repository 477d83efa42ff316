import logging

import pytest
from django.core.exceptions import ValidationError
from django.utils.translation import override

from portal.accounts.validators import (
    mask_id_number,
    normalize_mobile,
    parse_id_number,
    validate_mobile,
)
from portal.logging import RedactPersonalData

VALID_ID = "110101199003071233"  # male, 1990-03-07
VALID_ID_X = "11010519491231002X"  # check digit X, female


def test_id_number_valid_gives_sex_and_birth_date():
    rid = parse_id_number(VALID_ID)
    assert (rid.sex, rid.birth_date.isoformat()) == ("M", "1990-03-07")
    rid = parse_id_number(VALID_ID_X.lower())
    assert (rid.number, rid.sex, rid.birth_date.isoformat()) == (VALID_ID_X, "F", "1949-12-31")


@pytest.mark.parametrize(
    "value, code, message_part",
    [
        ("110101199003071234", "id_bad_check_digit", "check digit"),
        ("11010119900307123", "id_wrong_length", "18 characters; this one has 17"),
        ("1101011990030712333", "id_wrong_length", "this one has 19"),
        ("11010119900307123Y", "id_bad_characters", "17 digits followed by a digit or X"),
        ("110101199002301238", "id_bad_birth_date", "not a real date"),
    ],
)
def test_id_number_invalid_has_user_facing_message(value, code, message_part):
    with override("en"):  # messages are lazy: read them while English is active
        with pytest.raises(ValidationError) as exc:
            parse_id_number(value)
        assert exc.value.code == code
        assert message_part in exc.value.messages[0]


@pytest.mark.parametrize("raw", ["13800138000", "+86 138 0013 8000", "0086-138-0013-8000",
                                 "19912345678"])
def test_mobile_valid_forms_normalise(raw):
    validate_mobile(raw)
    assert len(normalize_mobile(raw)) == 11


@pytest.mark.parametrize("raw", ["12800138000", "1380013800", "138001380001", "abc", "",
                                 "02012345678"])
def test_mobile_invalid_is_rejected_with_message(raw):
    with override("en"):
        with pytest.raises(ValidationError) as exc:
            validate_mobile(raw)
        assert exc.value.code == "invalid_mobile"
        assert "11 digits" in exc.value.messages[0]


def test_id_and_mobile_messages_are_chinese_by_default():
    with pytest.raises(ValidationError) as exc:
        parse_id_number("110101199003071234")
    assert "校验" in exc.value.messages[0]
    with pytest.raises(ValidationError) as exc:
        validate_mobile("123")
    assert "手机号" in exc.value.messages[0]


def test_mask_id_number_hides_birth_date_and_sequence():
    assert mask_id_number(VALID_ID) == "110101********1233"


def test_logging_redacts_id_and_mobile_numbers():
    record = logging.LogRecord("x", logging.INFO, __file__, 1,
                               "patient %s phone %s", (VALID_ID, "13800138000"), None)
    RedactPersonalData().filter(record)
    text = record.getMessage()
    assert VALID_ID not in text and "13800138000" not in text
    assert "110101********1233" in text and "138****8000" in text
