"""open_memory: first opener owns the store; others are clients; no lock errors, no lost writes."""
import threading

from engine.service import RemoteMemory, ServedMemory, open_memory


def test_two_clients_adding_concurrently_lose_nothing(tmp_path, embedder):
    owner = open_memory(tmp_path / "s", embedder=embedder)
    assert isinstance(owner, ServedMemory)
    clients = [open_memory(tmp_path / "s") for _ in range(2)]
    assert all(isinstance(c, RemoteMemory) for c in clients)
    errors = []

    def add_many(client, tag):
        for i in range(25):
            try:
                client.add(f"{tag} note number {i}", user_id="u", infer=False)
            except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong
                errors.append(repr(exc))
    threads = [threading.Thread(target=add_many, args=(c, t)) for c, t in zip(clients, "ab")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert owner.count({"user_id": "u"}) == 50
    for c in clients:
        c.close()
    owner.close()


def test_a_client_takes_over_when_the_owner_closes(tmp_path, embedder):
    owner = open_memory(tmp_path / "s", embedder=embedder)
    owner.add("before", user_id="u", infer=False)
    client = open_memory(tmp_path / "s", embedder=embedder)
    owner.close()
    client.add("after", user_id="u", infer=False)  # no 'store is locked': the client becomes the owner
    assert client.is_owner
    assert sorted(r["memory"] for r in client.get_all(user_id="u")["results"]) == ["after", "before"]
    third = open_memory(tmp_path / "s")
    assert isinstance(third, RemoteMemory) and third.count() == 2
    third.close()
    client.close()


def test_a_holder_that_does_not_share_is_named(tmp_path, embedder):
    import pytest

    from engine import Memory, StoreError

    with Memory(tmp_path / "s", embedder=embedder):  # an older Loci: holds the lock, serves nobody
        with pytest.raises(StoreError, match="already open in .*process .*which does not share it"):
            open_memory(tmp_path / "s", wait=0.5)
