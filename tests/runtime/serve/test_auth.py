import pytest

from runtime.serve.auth import ApiKey
from runtime.serve.errors import ServeError


def test_no_key_lets_everyone_in():
    ApiKey(None).check(None)


@pytest.mark.parametrize("header,words", [(None, "missing API key"), ("Basic abc", "missing API key"),
                                          ("Bearer nope", "wrong API key"), ("Bearer s3cret-", "wrong API key")])
def test_a_missing_or_wrong_key_is_401(header, words):
    with pytest.raises(ServeError) as e:
        ApiKey("s3cret").check(header)
    assert e.value.status == 401 and words in e.value.message and e.value.code == "invalid_api_key"


def test_the_right_key_passes_whatever_the_scheme_case():
    for header in ("Bearer s3cret", "bearer s3cret", "Bearer  s3cret "):
        ApiKey("s3cret").check(header)
