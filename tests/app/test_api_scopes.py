"""Scoped keys over the real `loci serve`: mem0's MemoryClient with alice's key sees alice only."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import httpx
import pytest

os.environ["MEM0_TELEMETRY"] = "False"

from service_helpers import REPO, Served, child_env  # noqa: E402


def _loci(data_dir, *args):
    out = subprocess.run([sys.executable, "-m", "app.cli", "--data-dir", str(data_dir), *args], env=child_env(),
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data = tmp_path_factory.mktemp("scoped")
    alice_key = json.loads(_loci(data, "--json", "api-key", "create", "--user", "alice"))["key"]
    reader = json.loads(_loci(data, "--json", "api-key", "create", "--user", "alice", "--read-only"))["key"]
    server = Served(data).wait_ready()
    owner = {"Authorization": f"Token {server.key}"}
    ids = {}
    for user, text in (("alice", "Alice grows tomatoes"), ("bob", "Bob's bank PIN is 4321")):
        r = httpx.post(f"{server.url}/memories", headers=owner,
                       json={"messages": [{"role": "user", "content": text}], "user_id": user, "infer": False})
        ids[user] = r.json()["results"][0]["id"]
    yield {"server": server, "alice": alice_key, "reader": reader, "ids": ids, "owner": owner, "data": data}
    server.stop()


def test_memory_client_with_a_scoped_key_sees_its_user_only(world):
    from mem0 import MemoryClient

    server, ids = world["server"], world["ids"]
    client = MemoryClient(host=server.url, api_key=world["alice"])
    added = client.add("Alice bikes to work", user_id="alice", infer=False)["results"][0]
    assert client.get(added["id"])["user_id"] == "alice"
    assert {r["memory"] for r in client.get_all(filters={"user_id": "alice"})["results"]} == {
        "Alice grows tomatoes", "Alice bikes to work"}
    # filters naming bob (or anyone) are confined: nothing of bob's comes back
    for filters in ({"user_id": "bob"}, {"OR": [{"user_id": "bob"}, {"user_id": "alice"}]}, {"user_id": "*"}):
        hits = client.search("PIN", filters=filters)["results"]
        assert all(h["user_id"] == "alice" for h in hits), hits
        assert all(r["user_id"] == "alice" for r in client.get_all(filters=filters)["results"])
    assert [(e["type"], e["name"]) for e in client.users()["results"]] == [("user", "alice")]
    from mem0.exceptions import AuthenticationError, MemoryNotFoundError

    for call in (lambda: client.get(ids["bob"]), lambda: client.update(ids["bob"], text="Bob's PIN is 0000"),
                 lambda: client.delete(ids["bob"]), lambda: client.history(ids["bob"])):
        with pytest.raises(MemoryNotFoundError):  # 404: as if bob's memory did not exist
            call()
    with pytest.raises(AuthenticationError):  # 403: needs the owner key
        client.delete_all(user_id="alice")
    # bob's memory is untouched
    owner = MemoryClient(host=server.url, api_key=server.key)
    assert owner.get(ids["bob"])["memory"] == "Bob's bank PIN is 4321"


def test_ids_outside_the_scope_are_404_never_403(world):
    url, ids = world["server"].url, world["ids"]
    auth = {"Authorization": f"Token {world['alice']}"}
    bob = ids["bob"]
    for method, path, body in (("GET", f"/v1/memories/{bob}/", None), ("PUT", f"/v1/memories/{bob}/", {"text": "x"}),
                               ("DELETE", f"/v1/memories/{bob}/", None), ("GET", f"/v1/memories/{bob}/history/", None),
                               ("GET", f"/memories/{bob}", None), ("PUT", f"/memories/{bob}", {"text": "x"}),
                               ("DELETE", f"/memories/{bob}", None), ("GET", f"/memories/{bob}/history", None),
                               ("PUT", "/v1/batch/", {"memories": [{"memory_id": bob, "text": "x"}]}),
                               ("DELETE", "/v1/batch/", {"memories": [{"memory_id": bob}]})):
        r = httpx.request(method, url + path, headers=auth, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    r = httpx.get(f"{url}/v1/memories/{ids['alice']}/", headers=auth)
    assert r.status_code == 200 and r.json()["memory"] == "Alice grows tomatoes"
    for method, path in (("POST", "/reset"), ("DELETE", "/v1/memories/?user_id=alice"),
                         ("DELETE", "/memories?user_id=bob"), ("DELETE", "/v2/entities/user/bob/")):
        r = httpx.request(method, url + path, headers=auth)
        assert r.status_code == 403 and "owner" in r.json()["detail"], (path, r.text)
    r = httpx.post(f"{url}/memories", headers=auth, json={"messages": [{"role": "user", "content": "hi"}],
                                                         "user_id": "bob"})
    assert r.status_code == 403 and "limited to user 'alice'" in r.json()["detail"]
    assert httpx.get(f"{url}/v1/memories/{bob}/", headers=world["owner"]).json()["memory"] == "Bob's bank PIN is 4321"


def test_read_only_and_revoked_keys(world):
    url, data = world["server"].url, world["data"]
    auth = {"Authorization": f"Token {world['reader']}"}
    assert httpx.get(f"{url}/v1/memories/{world['ids']['alice']}/", headers=auth).status_code == 200
    r = httpx.post(f"{url}/v3/memories/add/", headers=auth, json={"messages": "x", "user_id": "alice"})
    assert r.status_code == 403 and "read-only" in r.json()["detail"]
    listed = json.loads(_loci(data, "--json", "api-key", "list"))
    assert {(k["user_id"], k["read_only"]) for k in listed} == {("alice", False), ("alice", True)}
    assert "digest" not in listed[0] and "key" not in listed[0]
    ro = next(k["id"] for k in listed if k["read_only"])
    _loci(data, "api-key", "revoke", ro)
    assert httpx.get(f"{url}/v1/ping/", headers=auth).status_code == 401
    assert oct(os.stat(data / "api_keys.json").st_mode & 0o777) == "0o600"


def test_rest_validates_as_the_engine_does(world):
    url, auth = world["server"].url, world["owner"]
    for body in ({"messages": "x", "user_id": "alice", "infer": "no"},
                 {"messages": "x", "user_id": "alice", "infer": 1}):
        r = httpx.post(f"{url}/v3/memories/add/", headers=auth, json=body)
        assert r.status_code == 400 and "infer" in r.json()["detail"], r.text
    r = httpx.post(f"{url}/v3/memories/search/", headers=auth, json={"query": "x", "user_id": "alice", "top_k": "5"})
    assert r.status_code == 400 and "top_k" in r.json()["detail"]


def test_chunked_oversized_body_is_413(world):
    url, auth = world["server"].url, world["owner"]

    def chunks():
        yield b'{"messages": "'
        for _ in range(40):
            yield b"x" * 100_000
        yield b'", "user_id": "alice"}'
    r = httpx.post(f"{url}/v3/memories/add/", headers={**auth, "content-type": "application/json"}, content=chunks())
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_host_header_must_name_loopback(world):
    server = world["server"]
    with socket.create_connection(("127.0.0.1", server.port)) as s:  # what a DNS-rebinding page sends
        s.sendall(b"GET /v1/ping/ HTTP/1.1\r\nHost: evil.example:%d\r\nAuthorization: Token %s\r\n"
                  b"Connection: close\r\n\r\n" % (server.port, server.key.encode()))
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
        reply = reply.decode()
    assert reply.startswith("HTTP/1.1 421") and "--allow-remote" in reply
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
        assert httpx.get(f"{server.url}/v1/ping/", headers={**world["owner"], "Host": host}).status_code == 200
