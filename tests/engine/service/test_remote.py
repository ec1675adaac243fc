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


def test_a_client_sees_the_owners_move_to_int8(tmp_path, embedder, monkeypatch):
    """A second program can follow (and wait for) the move an fp32 store makes to int8."""
    import engine.store.reembed as reembed

    monkeypatch.setattr(reembed, "START_DELAY_S", 0.0)
    from engine import Memory

    with Memory(tmp_path / "old", embedder=embedder) as mem:  # fp32, as stores were built before
        mem.add([{"role": "user", "content": f"Note {i}: Maya met Tomas in Bergen"} for i in range(40)],
                user_id="maya", infer=False)
    with ServedMemory(tmp_path / "old") as owner:
        remote = open_memory(tmp_path / "old")
        assert isinstance(remote, RemoteMemory)
        seen = []
        final = remote.migration_status(watch=seen.append, wait=120)
        assert final.state == "done" and final.done == final.total == 40 and seen[-1] == final
        assert owner.migration_status().state == "done" and "@int8" in owner.embedder.name
        assert remote.search("where did Maya meet Tomas", user_id="maya")["results"]
        remote.close()
