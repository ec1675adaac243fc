"""The REST API with mem0's own MemoryClient against a real `loci serve`, compared with engine.Memory."""
from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

os.environ["MEM0_TELEMETRY"] = "False"

from service_helpers import Served  # noqa: E402

CONVERSATION = [
    ("I moved to Oslo last month", "maya"),
    ("My sister Ingrid lives in Bergen", "maya"),
    ("I am allergic to peanuts", "maya"),
    ("Tom plays the cello every Sunday", "tom"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = Served(tmp_path_factory.mktemp("served")).wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(served):
    from mem0 import MemoryClient

    return MemoryClient(host=served.url, api_key=served.key)


@pytest.fixture(scope="module")
def default_embedder():
    """The embedder a store gets by default (what `loci serve` opens), not the suite's fp32 one."""
    from engine.config import EmbedderConfig
    from engine.inference.onnx_embedder import default_embedder

    emb = default_embedder(EmbedderConfig())
    emb.load()
    return emb


@pytest.fixture
def reference(tmp_path, default_embedder):
    from engine import Memory

    with Memory(tmp_path / "reference", embedder=default_embedder) as mem:
        yield mem


def _texts(rows):
    return [r["memory"] for r in rows]


def test_memory_client_round_trip_matches_engine_memory(client, reference):
    ids = {}
    for text, user in CONVERSATION:
        got = client.add([{"role": "user", "content": text}], user_id=user, infer=False)
        want = reference.add([{"role": "user", "content": text}], user_id=user, infer=False)
        assert [(r["memory"], r["event"]) for r in got["results"]] == \
               [(r["memory"], r["event"]) for r in want["results"]]
        ids[text] = got["results"][0]["id"]

    got = client.search("where does her sister live?", filters={"user_id": "maya"}, top_k=3)["results"]
    want = reference.search("where does her sister live?", filters={"user_id": "maya"}, top_k=3)["results"]
    assert _texts(got) == _texts(want)
    assert got[0]["memory"] == "My sister Ingrid lives in Bergen"
    assert [round(r["score"], 4) for r in got] == [round(r["score"], 4) for r in want]

    listed = client.get_all(filters={"AND": [{"user_id": "maya"}]})
    assert listed["count"] == 3
    assert _texts(listed["results"]) == _texts(reference.get_all(filters={"user_id": "maya"})["results"])

    oslo = ids["I moved to Oslo last month"]
    assert client.get(oslo)["memory"] == "I moved to Oslo last month"
    assert client.update(oslo, text="I moved to Oslo in March")["memory"] == "I moved to Oslo in March"
    assert [(h["event"], h["old_memory"], h["new_memory"]) for h in client.history(oslo)] == [
        ("ADD", None, "I moved to Oslo last month"),
        ("UPDATE", "I moved to Oslo last month", "I moved to Oslo in March")]

    users = {(e["type"], e["name"]): e["total_memories"] for e in client.users()["results"]}
    assert users == {("user", "maya"): 3, ("user", "tom"): 1}

    peanuts = ids["I am allergic to peanuts"]
    client.batch_update([{"memory_id": oslo, "text": "Oslo since March"},
                         {"memory_id": peanuts, "metadata": {"severity": "high"}}])
    assert client.get(oslo)["memory"] == "Oslo since March"
    assert client.get(peanuts)["metadata"] == {"severity": "high"}

    client.batch_delete([{"memory_id": oslo}])
    client.delete(peanuts)
    from mem0.exceptions import MemoryNotFoundError

    with pytest.raises(MemoryNotFoundError):
        client.get(peanuts)
    assert _texts(client.get_all(filters={"user_id": "maya"})["results"]) == ["My sister Ingrid lives in Bergen"]

    client.delete_all(user_id="maya")
    assert client.get_all(filters={"user_id": "maya"})["count"] == 0
    assert client.get_all(filters={"user_id": "tom"})["count"] == 1  # other users untouched


def test_wrong_or_missing_key_is_401_with_a_clear_message(served):
    from mem0 import MemoryClient

    with pytest.raises(ValueError, match="API key is wrong"):
        MemoryClient(host=served.url, api_key="loci-not-the-key")
    for headers in ({}, {"Authorization": "Token nope"}, {"Authorization": served.key}):
        r = httpx.post(f"{served.url}/memories", json={"messages": [], "user_id": "u"}, headers=headers)
        assert r.status_code == 401
        assert "Authorization: Token" in r.json()["detail"]


def test_malformed_bodies_are_400_naming_the_field(served):
    auth = {"Authorization": f"Token {served.key}"}
    r = httpx.post(f"{served.url}/v3/memories/add/", content=b'{"messages": [', headers={
        **auth, "content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    r = httpx.post(f"{served.url}/v3/memories/add/", json={"messages": [{"role": "user"}], "user_id": "u"},
                   headers=auth)
    assert r.status_code == 400 and "messages[0].content" in r.json()["detail"]
    r = httpx.post(f"{served.url}/v3/memories/search/", json={"filters": {}}, headers=auth)
    assert r.status_code == 400 and "'query'" in r.json()["detail"]
    r = httpx.post(f"{served.url}/memories", json={"messages": [{"role": "user", "content": "hi"}]}, headers=auth)
    assert r.status_code == 400 and "user_id" in r.json()["detail"]
    r = httpx.post(f"{served.url}/v3/memories/add/", json={"messages": "x" * 3_000_000, "user_id": "u"},
                   headers=auth)
    assert r.status_code == 413


def test_self_hosted_endpoints_and_openapi_schema(served):
    auth = {"Authorization": f"Token {served.key}"}
    base = served.url
    added = httpx.post(f"{base}/memories", headers=auth, json={
        "messages": [{"role": "user", "content": "Lena keeps bees in her garden"}], "user_id": "lena",
        "infer": False}).json()["results"][0]
    mid = added["id"]
    assert httpx.get(f"{base}/memories", params={"user_id": "lena"}, headers=auth).json()["results"][0]["id"] == mid
    assert httpx.get(f"{base}/memories/{mid}", headers=auth).json()["memory"] == "Lena keeps bees in her garden"
    hits = httpx.post(f"{base}/search", headers=auth, json={"query": "who keeps bees?", "user_id": "lena"}).json()
    assert hits["results"][0]["id"] == mid
    assert httpx.put(f"{base}/memories/{mid}", headers=auth, json={"text": "Lena keeps two hives"}).status_code == 200
    assert [h["event"] for h in httpx.get(f"{base}/memories/{mid}/history", headers=auth).json()] == ["ADD", "UPDATE"]
    assert httpx.delete(f"{base}/memories/{mid}", headers=auth).status_code == 200
    assert httpx.get(f"{base}/memories/{mid}", headers=auth).status_code == 404
    httpx.post(f"{base}/memories", headers=auth, json={"messages": [{"role": "user", "content": "x"}],
                                                        "user_id": "lena", "infer": False})
    assert httpx.delete(f"{base}/memories", params={"user_id": "lena"}, headers=auth).status_code == 200
    assert httpx.post(f"{base}/reset", headers=auth).json() == {"message": "All memories reset"}
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    for path in ("/memories", "/memories/{memory_id}", "/search", "/memories/{memory_id}/history", "/reset",
                 "/v3/memories/add/", "/v1/batch/"):
        assert path in paths
    # no Swagger page (its assets would come from a CDN); the schema itself is served
    assert httpx.get(f"{base}/docs", headers=auth).status_code == 404
    assert "cdn" not in httpx.get(f"{base}/openapi.json").text.lower()


def test_nothing_listens_beyond_loopback_by_default(served):
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True, check=True).stdout
    mine = [line for line in out.splitlines() if f"pid={served.proc.pid}," in line]
    assert mine, out  # the API and the owner's service
    for line in mine:
        local = line.split()[3]
        assert local.startswith(("127.0.0.1:", "[::1]:")), line


def test_non_loopback_bind_needs_the_explicit_flag(tmp_path):
    from app.api import serve

    assert serve(str(tmp_path), host="0.0.0.0", port=1) == 2


def test_responses_report_engine_time(served):
    r = httpx.post(f"{served.url}/v3/memories/search/", headers={"Authorization": f"Token {served.key}"},
                   json={"query": "anything", "filters": {"user_id": "nobody"}})
    assert r.status_code == 200
    engine_ms = float(r.headers["server-timing"].split("dur=")[1])
    assert 0 < engine_ms < r.elapsed.total_seconds() * 1000


def test_parent_watch_tells_a_live_process_from_a_finished_one():
    from app.api import _alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert _alive(os.getpid()) and not _alive(child.pid)
