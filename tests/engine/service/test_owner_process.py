"""OwnerProcess: a store owner in a child process serves clients, closes on stop or when its parent dies."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine import Memory, StoreError
from engine.service import RemoteMemory, open_memory
from engine.service.opening import lock_is_free
from engine.service.owner_process import OwnerProcess

ROOT = Path(__file__).resolve().parents[3]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # exited but not yet reaped (an orphan waits for init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def test_the_owner_serves_clients_and_closes_the_store_on_stop(tmp_path):
    owner = OwnerProcess(tmp_path / "s")
    ready = owner.start()
    assert ready is not None and ready.pid != os.getpid() and ready.url.startswith("http://127.0.0.1:")
    assert not lock_is_free(tmp_path / "s")
    mem = open_memory(tmp_path / "s")
    assert isinstance(mem, RemoteMemory)
    mem.add("My cat is called Miso", user_id="me", infer=False)
    assert mem.search("what is my cat called", user_id="me")["results"][0]["memory"] == "My cat is called Miso"
    mem.close()
    assert owner.stop() == 0
    assert lock_is_free(tmp_path / "s")
    with Memory(tmp_path / "s") as again:  # what the owner wrote is in the store
        assert [r["memory"] for r in again.get_all(user_id="me")["results"]] == ["My cat is called Miso"]


def test_no_second_owner_for_a_store_that_has_one(tmp_path):
    with Memory(tmp_path / "s"):
        assert OwnerProcess(tmp_path / "s").start() is None


def test_a_store_the_child_cannot_open_raises_its_reason(tmp_path):
    class Other:
        name = "some/other-model"
        dimension = 768

        def embed_batch(self, texts):
            raise AssertionError("not called")

    with Memory(tmp_path / "s", embedder=Other()):
        pass
    owner = OwnerProcess(tmp_path / "s")
    with pytest.raises(StoreError, match="built with the embedding model"):
        owner.start()
    assert not owner.running and lock_is_free(tmp_path / "s")


def test_the_owner_closes_the_store_when_its_parent_is_killed(tmp_path):
    parent = textwrap.dedent("""
        import sys, time
        from engine.service.owner_process import OwnerProcess
        if __name__ == "__main__":
            ready = OwnerProcess(sys.argv[1]).start()
            print(ready.pid, flush=True)
            time.sleep(600)
    """)
    script = tmp_path / "parent.py"
    script.write_text(parent)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "s")], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        child = int(proc.stdout.readline())
        assert not lock_is_free(tmp_path / "s")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        deadline = time.monotonic() + 60
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(child)
        assert lock_is_free(tmp_path / "s")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_an_owner_this_process_cannot_reach_is_stopped_and_the_store_left_free(tmp_path, monkeypatch):
    """Without a loopback network (a sandbox) the child serves where nobody can call it: the caller is
    told None (open the store yourself) and the child has closed the store."""
    monkeypatch.setattr("engine.service.owner_process.answers", lambda folder, ann: False)
    owner = OwnerProcess(tmp_path / "s")
    assert owner.start() is None
    assert not owner.running and owner.exitcode == 0 and lock_is_free(tmp_path / "s")
