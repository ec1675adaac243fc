"""RemoteMemory behaves like engine.Memory, errors included."""
import pytest

from engine import NotFoundError
from engine.service import RemoteMemory, ServedMemory, open_memory


def test_remote_calls_return_the_owners_records_and_errors(tmp_path, embedder):
    with ServedMemory(tmp_path / "s", embedder=embedder) as owner:
        remote = open_memory(tmp_path / "s")
        assert isinstance(remote, RemoteMemory)
        added = remote.add("I keep bees", user_id="u", infer=False)["results"][0]
        assert owner.get_record(added["id"]) == remote.get_record(added["id"])
        assert remote.search("bees", user_id="u")["results"][0]["id"] == added["id"]
        assert remote.get("missing") is None  # mem0's get()
        with pytest.raises(NotFoundError, match="No memory with id"):
            remote.get_record("missing")
        remote.close()
