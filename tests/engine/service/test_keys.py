"""The API key file: made once, private, compared safely."""
import stat

from engine.service.keys import load_or_create_api_key, same_key, token_from_header


def test_key_is_created_once_with_mode_0600(tmp_path):
    key = load_or_create_api_key(tmp_path / "new")
    assert key.startswith("loci-") and len(key) > 30
    assert stat.S_IMODE((tmp_path / "new" / "api_key").stat().st_mode) == 0o600
    assert load_or_create_api_key(tmp_path / "new") == key


def test_header_parsing_and_comparison():
    assert token_from_header("Token abc") == "abc" and token_from_header("Bearer abc") == "abc"
    assert token_from_header("abc") is None and token_from_header(None) is None
    assert same_key("abc", "abc") and not same_key("abd", "abc") and not same_key(None, "abc")
