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


def test_scoped_keys_are_created_listed_identified_and_revoked(tmp_path):
    import pytest

    from engine import NotFoundError
    from engine.service.keys import KeyRing, KeyScope, create_scoped_key, list_scoped_keys, revoke_scoped_key

    ring = KeyRing(tmp_path)
    assert ring.identify(ring.owner_key) == (True, None)
    made, token = create_scoped_key(tmp_path, "alice", "planner", read_only=True, name="laptop")
    assert token.startswith("loci-s-") and token not in (tmp_path / "api_keys.json").read_text()
    assert stat.S_IMODE((tmp_path / "api_keys.json").stat().st_mode) == 0o600
    assert ring.identify(token) == (True, KeyScope("alice", "planner", True))
    assert ring.identify("loci-s-guess") == (False, None) and ring.identify(None) == (False, None)
    assert [k.id for k in list_scoped_keys(tmp_path)] == [made.id]
    assert revoke_scoped_key(tmp_path, made.id).scope.user_id == "alice"
    assert ring.identify(token) == (False, None)  # the ring re-reads the changed list
    with pytest.raises(NotFoundError, match="api-key list"):
        revoke_scoped_key(tmp_path, made.id)


def test_unreadable_key_list_admits_no_scoped_key(tmp_path):
    import pytest

    from engine import StoreError
    from engine.service.keys import KeyRing, create_scoped_key, list_scoped_keys

    _, token = create_scoped_key(tmp_path, "alice")
    (tmp_path / "api_keys.json").write_text("{broken")
    with pytest.raises(StoreError, match="Move it aside"):
        list_scoped_keys(tmp_path)
    ring = KeyRing(tmp_path)
    assert ring.identify(token) == (False, None) and ring.identify(ring.owner_key) == (True, None)
