"""The owner's loopback service: key required, public methods only, changes reported."""
import http.client
import json

from engine.service import ServedMemory, announce


def _post(port, body, key):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/rpc", body=json.dumps(body), headers={"Authorization": f"Token {key}"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def test_service_needs_the_key_and_offers_only_public_methods(tmp_path, embedder):
    with ServedMemory(tmp_path / "s", embedder=embedder) as mem:
        ann = announce.read(mem.data_dir)
        assert ann.state == "serving" and ann.host == "127.0.0.1"
        key = (mem.data_dir / "api_key").read_text().strip()
        assert _post(ann.port, {"method": "count"}, "wrong")[0] == 401
        status, body = _post(ann.port, {"method": "_commit"}, key)
        assert status == 400 and "not a method" in body["error"]["message"]
        assert _post(ann.port, {"method": "count"}, key) == (200, {"result": 0})
        events = []
        mem.subscribe(events.append)
        _post(ann.port, {"method": "add", "args": ["hello"], "kwargs": {"user_id": "u", "infer": False}}, key)
        assert [e["kind"] for e in events] == ["add"]
    assert announce.read(tmp_path / "s").state == "closed"
